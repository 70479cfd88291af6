"""Survival and classification metrics of out-of-fold predictions, and bootstrap intervals
over patients (one resample draws patients, never folds)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sksurv.metrics import concordance_index_censored


def harrell_cindex(time: np.ndarray, event: np.ndarray, risk: np.ndarray) -> float:
    """Harrell's c-index (scikit-survival; ties in risk count 1/2, tied_tol=1e-8)."""
    return float(concordance_index_censored(np.asarray(event).astype(bool),
                                            np.asarray(time, dtype=np.float64),
                                            np.asarray(risk, dtype=np.float64))[0])


def bootstrap_ci(stat: Callable[[np.ndarray], float], n: int, n_boot: int, seed: int,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile CI of ``stat(indices)`` over ``n_boot`` resamples of ``n`` patients.

    Resamples where the statistic is undefined (raises or is NaN, e.g. no comparable pair)
    are skipped; fewer than half defined gives (nan, nan).
    """
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, size=n)
        try:
            v = stat(idx)
        except (ValueError, ZeroDivisionError):
            continue
        if np.isfinite(v):
            values.append(v)
    if not values or len(values) < n_boot / 2:
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return float(lo), float(hi)


def _surv(time: np.ndarray, event: np.ndarray) -> np.ndarray:
    from sksurv.util import Surv

    return Surv.from_arrays(np.asarray(event).astype(bool), np.asarray(time, dtype=np.float64))


def uno_cindex(time: np.ndarray, event: np.ndarray, risk: np.ndarray,
               tau: float | None = None) -> float:
    """Uno's IPCW c-index (scikit-survival) truncated at ``tau``; the censoring distribution is
    the Kaplan-Meier estimate on the same patients (the pooled out-of-fold set)."""
    from sksurv.metrics import concordance_index_ipcw

    y = _surv(time, event)
    return float(concordance_index_ipcw(y, y, np.asarray(risk, dtype=np.float64), tau=tau)[0])


def td_auc(time: np.ndarray, event: np.ndarray, risk: np.ndarray, horizon: float) -> float:
    """Cumulative/dynamic AUC at ``horizon`` (Uno 2007 / Hung & Chiang 2010, IPCW): patients
    with an event by ``horizon`` against those still event-free after it."""
    from sksurv.metrics import cumulative_dynamic_auc

    y = _surv(time, event)
    auc, _ = cumulative_dynamic_auc(y, y, np.asarray(risk, dtype=np.float64), [horizon])
    return float(auc[0])


def integrated_brier(time: np.ndarray, event: np.ndarray, surv: np.ndarray,
                     grid: np.ndarray) -> float:
    """Integrated Brier score (Graf 1999, IPCW) of survival probabilities ``surv`` (n, len(grid))
    over ``grid``; lower is better, 0.25 is a constant 0.5 forecast."""
    from sksurv.metrics import integrated_brier_score

    y = _surv(time, event)
    return float(integrated_brier_score(y, y, surv, grid))


def paired_bootstrap(stat_a: Callable[[np.ndarray], float], stat_b: Callable[[np.ndarray], float],
                     n: int, n_boot: int, seed: int, level: float = 0.95
                     ) -> tuple[float, float, float]:
    """Percentile CI of ``stat_a - stat_b`` over patient resamples drawn once and applied to
    both (so the two models are compared on the same patients), and the two-sided bootstrap
    p-value of "no difference": 2 x the smaller share of differences on either side of 0."""
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, size=n)
        try:
            d = stat_a(idx) - stat_b(idx)
        except (ValueError, ZeroDivisionError):
            continue
        if np.isfinite(d):
            diffs.append(d)
    if len(diffs) < max(1, n_boot / 2):
        return float("nan"), float("nan"), float("nan")
    d = np.asarray(diffs)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(d, [tail, 100 - tail])
    p = min(1.0, 2 * min(float(np.mean(d <= 0)), float(np.mean(d >= 0))))
    return float(lo), float(hi), p
