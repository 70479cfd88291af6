"""Overall survival and a binary endpoint driven by the latent programmes."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from histodistill.demo.spec import Programme


def simulate_outcomes(z: pd.DataFrame, programmes: Sequence[Programme],
                      median_months: float, max_follow_up: float,
                      rng: np.random.Generator, covariate_rng: np.random.Generator | None = None
                      ) -> pd.DataFrame:
    """Exponential survival with log hazard sum(beta_k z_k), uniform censoring in
    [6, max_follow_up] months; binary endpoint ~ Bernoulli(sigmoid(sum(gamma_k z_k))); age
    (uninformative) and grade 1-3 (a noisy cut of the first programme, proliferation)."""
    eta = sum(p.log_hazard * z[p.name] for p in programmes)
    base_rate = np.log(2.0) / median_months
    event_time = rng.exponential(1.0 / (base_rate * np.exp(eta.to_numpy())))
    censor_time = rng.uniform(6.0, max_follow_up, len(z))
    time = np.minimum(event_time, censor_time)
    logit = sum(p.binary_logit * z[p.name] for p in programmes)
    prob = 1.0 / (1.0 + np.exp(-logit.to_numpy()))
    metastasis = (rng.random(len(z)) < prob).astype(int)
    # clinical covariates (a privileged modality for bidistill): grade tracks proliferation
    cov_rng = covariate_rng or np.random.default_rng(0)  # own stream: other draws unchanged
    grade_signal = z[programmes[0].name].to_numpy() + cov_rng.normal(0.0, 0.7, len(z))
    return pd.DataFrame({
        "time": np.round(np.maximum(time, 0.1), 2),
        "event": (event_time <= censor_time).astype(int),
        "metastasis": metastasis,
        "age": np.round(cov_rng.normal(62.0, 10.0, len(z))).astype(int),
        "grade": 1 + np.digitize(grade_signal, [-0.6, 0.6]),
        "linear_predictor": eta.to_numpy(),
        "metastasis_probability": prob,
    }, index=z.index)
