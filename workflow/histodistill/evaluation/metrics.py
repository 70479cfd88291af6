"""Concordance and bootstrap confidence intervals over patients."""

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
    if len(values) < n_boot / 2:
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return float(lo), float(hi)
