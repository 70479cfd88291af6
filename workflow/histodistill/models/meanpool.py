"""``wsi_meanpool``: the strong simple histology-only baseline every report carries.

Each patient's patch features (already z-scored by the fold's feature scaler) are pooled over
the whole bag - the mean, or the mean and the per-dimension max (``pooling: mean_max``) - and
the pooled vector is standardised on the fold's training patients. Survival: a ridge-penalised
Cox model (scikit-survival's ``CoxPHSurvivalAnalysis``, Breslow ties) with a Breslow baseline
hazard; binary: an L2-penalised logistic regression. ``penalty`` is the ridge weight on the
summed log-likelihood's scale (scikit-survival's ``alpha``; logistic ``C = 1 / penalty``); it
is chosen on the inner validation split like every other model's knobs (training/tuning.py).
It reads no RNA, at training or inference.

The fit is closed form (seconds per fold, no epochs). Wide features (more pooled dimensions than
training patients) are fitted on the training matrix's singular vectors: a ridge solution lies
in the rows' span, so this is the same model, only faster.

So that the rest of the pipeline treats it as any other model, the Cox model is written in the
discrete-time form the others predict: for the fold's interval ends e_j (the inner cuts and
the longest training follow-up, as in evaluation/curves.py), the hazard of interval j is
h_j = 1 - exp(-(H0(e_j) - H0(e_{j-1})) exp(lp)), so S_j = S0(e_j)^exp(lp) exactly, and the risk
(-sum_j S_j) ranks patients as the linear predictor ``lp`` does.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from histodistill.models.base import Inputs, ModelDims, Outputs, RiskModel
from histodistill.models.catalog import CATALOG

Pooling = Literal["mean", "mean_max"]


def pool(features: torch.Tensor, pooling: Pooling) -> torch.Tensor:
    """(N, D) -> (D,) mean, or (2D,) mean ++ max."""
    mean = features.mean(dim=0)
    return mean if pooling == "mean" else torch.cat([mean, features.max(dim=0).values])


def breslow_increments(lp: np.ndarray, time: np.ndarray, event: np.ndarray,
                       ends: np.ndarray) -> np.ndarray:
    """Breslow cumulative baseline hazard H0 at ``ends``, as increments per interval."""
    order = np.argsort(time, kind="mergesort")
    t, e, r = time[order], event[order].astype(bool), np.exp(lp[order])
    at_risk = np.cumsum(r[::-1])[::-1]  # sum of exp(lp) over patients with time >= t_i
    first = np.searchsorted(t, t, side="left")  # ties share the risk set of their first row
    jumps = np.where(e, 1.0 / at_risk[first], 0.0)
    cum = np.concatenate([[0.0], np.cumsum(jumps)])
    h0 = cum[np.searchsorted(t, ends, side="right")]
    return np.diff(np.concatenate([[0.0], h0]))


class WsiMeanPool(RiskModel):
    info = CATALOG["wsi_meanpool"]

    def __init__(self, dims: ModelDims, pooling: Pooling = "mean", penalty: float = 10.0,
                 outcome: Literal["survival", "binary"] = "survival"):
        super().__init__()
        if pooling not in ("mean", "mean_max"):
            raise ValueError(f"pooling must be mean or mean_max, got {pooling!r}")
        self.pooling, self.penalty, self.outcome = pooling, float(penalty), outcome
        n = dims.feature_dim * (2 if pooling == "mean_max" else 1)
        self.register_buffer("center", torch.zeros(n))
        self.register_buffer("scale", torch.ones(n))
        self.register_buffer("coef", torch.zeros(n))
        self.register_buffer("intercept", torch.zeros(1))
        self.register_buffer("increments", torch.full((dims.n_out,), 1e-3))  # H0 per interval

    def structure(self) -> dict[str, object]:
        return {"outcome": self.outcome}

    def pooled(self, features: torch.Tensor) -> torch.Tensor:
        return pool(features, self.pooling)

    def forward(self, inputs: Inputs) -> Outputs:
        assert inputs.features is not None
        z = (self.pooled(inputs.features) - self.center) / self.scale
        lp = z @ self.coef
        if self.outcome == "binary":
            logits = (lp + self.intercept).reshape(1)
        else:  # logit(1 - exp(-u)) = log(exp(u) - 1) = u + log(1 - exp(-u))
            u = (self.increments * torch.exp(lp)).clamp_min(1e-12)
            logits = u + torch.log(-torch.expm1(-u))
        n = inputs.features.shape[0]
        return Outputs(logits, z, torch.full((n,), 1.0 / n, device=z.device))

    def fit_pooled(self, x: np.ndarray, time: np.ndarray, event: np.ndarray,
                   label: np.ndarray | None, ends: np.ndarray) -> None:
        """Fit on the training patients' pooled vectors ``x`` (n, P). ``ends``: the interval
        ends (survival)."""
        center = x.mean(axis=0)
        scale = x.std(axis=0)
        scale = np.where(scale > 1e-8, scale, 1.0)
        z = (x - center) / scale
        # a ridge solution lies in the span of the rows: fit on the singular directions
        _, s, vt = np.linalg.svd(z, full_matrices=False)
        keep = s > s.max() * 1e-10 if len(s) else s > 0
        basis = vt[keep].T  # (P, r)
        reduced = z @ basis
        intercept = 0.0
        if self.outcome == "binary":
            from sklearn.linear_model import LogisticRegression

            assert label is not None
            clf = LogisticRegression(C=1.0 / self.penalty, max_iter=1000).fit(reduced, label)
            gamma, intercept = clf.coef_.ravel(), float(clf.intercept_[0])
        else:
            from sksurv.linear_model import CoxPHSurvivalAnalysis
            from sksurv.util import Surv

            cox = CoxPHSurvivalAnalysis(alpha=self.penalty, ties="breslow", n_iter=200)
            cox.fit(reduced, Surv.from_arrays(event.astype(bool), time))
            gamma = cox.coef_
        coef = basis @ gamma
        if self.outcome == "survival":
            inc = breslow_increments(z @ coef, time, event, ends)
            self.increments.copy_(torch.as_tensor(np.maximum(inc, 1e-12)))
        for buf, value in ((self.center, center), (self.scale, scale), (self.coef, coef),
                           (self.intercept, [intercept])):
            buf.copy_(torch.as_tensor(np.asarray(value), dtype=buf.dtype))
