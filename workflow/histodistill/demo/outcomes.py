"""Overall survival and a binary endpoint driven by the latent programmes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from histodistill.demo.spec import Programme


def simulate_outcomes(z: pd.DataFrame, programmes: Sequence[Programme],
                      median_months: float, max_follow_up: float,
                      rng: np.random.Generator) -> pd.DataFrame:
    """Exponential survival with log hazard sum(beta_k z_k), uniform censoring in
    [6, max_follow_up] months; binary endpoint ~ Bernoulli(sigmoid(sum(gamma_k z_k)))."""
    eta = sum(p.log_hazard * z[p.name] for p in programmes)
    base_rate = np.log(2.0) / median_months
    event_time = rng.exponential(1.0 / (base_rate * np.exp(eta.to_numpy())))
    censor_time = rng.uniform(6.0, max_follow_up, len(z))
    time = np.minimum(event_time, censor_time)
    logit = sum(p.binary_logit * z[p.name] for p in programmes)
    prob = 1.0 / (1.0 + np.exp(-logit.to_numpy()))
    return pd.DataFrame({
        "time": np.round(np.maximum(time, 0.1), 2),
        "event": (event_time <= censor_time).astype(int),
        "metastasis": (rng.random(len(z)) < prob).astype(int),
        "linear_predictor": eta.to_numpy(),
        "metastasis_probability": prob,
    }, index=z.index)
