"""Discrete-time survival (Zadeh & Schmid 2020), as used by MCAT, SurvPath and G-HANet.

The time axis is cut at quantiles of the *uncensored training-fold* times into ``n_bins``
intervals. The model outputs one logit per interval; hazards h_j = sigmoid(logit_j), survival
S_j = prod_{k<=j} (1 - h_k), risk = -sum_j S_j. Everything is computed in log space.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from histodistill.errors import InputError


def bin_cuts(times: np.ndarray, events: np.ndarray, n_bins: int) -> np.ndarray:
    """The ``n_bins - 1`` inner cut points: quantiles of the uncensored times."""
    observed = np.asarray(times, dtype=np.float64)[np.asarray(events) == 1]
    if len(observed) < n_bins:
        raise InputError(f"only {len(observed)} events in the training part of the fold; need "
                         f">= {n_bins} to place {n_bins} time bins (lower train.n_bins)")
    cuts = np.quantile(observed, np.linspace(0, 1, n_bins + 1)[1:-1])
    return np.unique(cuts)


def discretise(times: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Interval index of each time: 0 .. len(cuts)."""
    return np.searchsorted(cuts, np.asarray(times, dtype=np.float64), side="right")


def nll_loss(logits: torch.Tensor, interval: torch.Tensor, event: torch.Tensor,
             alpha: float = 0.0) -> torch.Tensor:
    """Mean negative log-likelihood of a batch.

    An event in interval y contributes -log S_{y-1} - log h_y; a patient censored in interval
    y contributes -log S_y (survived the whole interval). ``alpha`` up-weights the uncensored
    term as in MCAT's NLLSurvLoss: loss = (1 - alpha) * nll + alpha * uncensored_nll.
    """
    log_h = F.logsigmoid(logits)
    log_1mh = F.logsigmoid(-logits)
    log_s = torch.cumsum(log_1mh, dim=1)
    log_s_prev = F.pad(log_s, (1, 0))[:, :-1]  # log S_{y-1}, with S_{-1} = 1
    idx = interval.long().unsqueeze(1)
    ev = event.float()
    uncensored = -ev * (log_s_prev.gather(1, idx) + log_h.gather(1, idx)).squeeze(1)
    censored = -(1 - ev) * log_s.gather(1, idx).squeeze(1)
    nll = censored + uncensored
    return ((1 - alpha) * nll + alpha * uncensored).mean()


def survival_curve(logits: torch.Tensor) -> torch.Tensor:
    return torch.exp(torch.cumsum(F.logsigmoid(-logits), dim=-1))


def risk_score(logits: torch.Tensor) -> torch.Tensor:
    """Higher = worse prognosis (MCAT's convention: -sum of the survival curve)."""
    return -survival_curve(logits).sum(dim=-1)


def binary_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
              temperature: float) -> torch.Tensor:
    """Hinton-style distillation for independent sigmoid outputs (one per time bin).

    sum_j KL(Bern(sigmoid(t_j / T)) || Bern(sigmoid(s_j / T))) * T^2, averaged over the batch.
    """
    t = temperature
    p = torch.sigmoid(teacher_logits / t)
    cross = F.binary_cross_entropy_with_logits(student_logits / t, p, reduction="none")
    entropy = F.binary_cross_entropy_with_logits(teacher_logits / t, p, reduction="none")
    return (cross - entropy).sum(dim=-1).mean() * t * t
