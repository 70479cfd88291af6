"""Survival and classification metrics of out-of-fold predictions, and bootstrap intervals
over patients (one resample draws patients, never folds)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from histodistill.concordance import harrell_cindex  # noqa: F401  (re-exported)


def bootstrap_ci(stat: Callable[[np.ndarray], float], n: int, n_boot: int, seed: int,
                 level: float = 0.95) -> tuple[float, float]:
    """Percentile CI of ``stat(indices)`` over ``n_boot`` resamples of ``n`` patients.

    Resamples where the statistic is undefined (raises or is NaN, e.g. no comparable pair)
    are skipped; fewer than half defined gives (nan, nan).
    """
    lo, hi = bootstrap_cis(lambda i: np.array([stat(i)]), n, n_boot, seed, level)
    return float(lo[0]), float(hi[0])


def bootstrap_cis(stat: Callable[[np.ndarray], np.ndarray], n: int, n_boot: int, seed: int,
                  level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """:func:`bootstrap_ci` of a vector-valued statistic (several horizons from one call), each
    component over the resamples where it is defined."""
    v = _resampled(stat, n, n_boot, seed)
    if not len(v):
        return np.array([np.nan]), np.array([np.nan])
    tail = (1 - level) / 2 * 100
    lo, hi = np.full(v.shape[1], np.nan), np.full(v.shape[1], np.nan)
    for k in range(v.shape[1]):
        ok = v[np.isfinite(v[:, k]), k]
        if len(ok) and len(ok) >= n_boot / 2:
            lo[k], hi[k] = np.percentile(ok, [tail, 100 - tail])
    return lo, hi


def _resampled(stat: Callable[[np.ndarray], np.ndarray], n: int, n_boot: int, seed: int
               ) -> np.ndarray:
    """``stat`` on ``n_boot`` seeded resamples of ``n`` patients, one row per resample where it
    did not raise (an undefined statistic, e.g. no comparable pair)."""
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, size=n)
        try:
            values.append(np.atleast_1d(np.asarray(stat(idx), dtype=np.float64)))
        except (ValueError, ZeroDivisionError):
            continue
    return np.stack(values) if values else np.empty((0, 1))


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
    with an event by ``horizon`` against those still event-free after it. A horizon outside
    the follow-up raises ValueError."""
    t = np.asarray(time, dtype=np.float64)
    if not t.min() <= horizon < t.max():
        raise ValueError(f"horizon {horizon:g} outside the follow-up [{t.min():g}, {t.max():g})")
    return float(td_aucs(time, event, risk, [horizon])[0])


def td_aucs(time: np.ndarray, event: np.ndarray, risk: np.ndarray,
            horizons: list[float] | tuple[float, ...]) -> np.ndarray:
    """:func:`td_auc` at several horizons from one IPCW fit; NaN for a horizon outside these
    patients' follow-up or without an event before it."""
    import warnings

    from sksurv.metrics import cumulative_dynamic_auc

    t = np.asarray(time, dtype=np.float64)
    h = np.asarray(horizons, dtype=np.float64)
    inside = (h >= t.min()) & (h < t.max())
    out = np.full(len(h), np.nan)
    if inside.any():
        y = _surv(time, event)
        with warnings.catch_warnings():  # no case before a horizon: NaN, handled by callers
            warnings.simplefilter("ignore", RuntimeWarning)
            auc, _ = cumulative_dynamic_auc(y, y, np.asarray(risk, dtype=np.float64), h[inside])
        out[inside] = auc
    return out


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
    p-value of "no difference": 2 x the smaller share of differences on either side of 0,
    floored at 1 / (the resamples used): B resamples cannot resolve a smaller p (the report
    prints it as "< 1/B")."""
    d = _resampled(lambda i: stat_a(i) - stat_b(i), n, n_boot, seed)[:, 0]
    d = d[np.isfinite(d)]
    if len(d) < max(1, n_boot / 2):
        return float("nan"), float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(d, [tail, 100 - tail])
    p = min(1.0, max(1 / len(d), 2 * min(float(np.mean(d <= 0)), float(np.mean(d >= 0)))))
    return float(lo), float(hi), p
