"""Harrell's c-index: the evaluation's headline metric and training's selection criterion
(one implementation, outside ``evaluation/`` so that training does not hash the evaluation
code)."""

from __future__ import annotations

import numpy as np


def harrell_cindex(time: np.ndarray, event: np.ndarray, risk: np.ndarray,
                   tied_tol: float = 1e-8) -> float:
    """Harrell's c-index, with scikit-survival's definition to the last digit: (i, j) is
    comparable when i has an event and j outlived it or was censored at i's event time;
    risks within ``tied_tol`` count one half.

    Vectorised over blocks of events (about 100x faster than
    ``sksurv.metrics.concordance_index_censored`` on 1,000 patients, which matters inside
    thousands of bootstrap resamples); tests check it against scikit-survival, a brute-force
    loop and MCAT's 275 published per-fold values.
    """
    t = np.asarray(time, dtype=np.float64)
    e = np.asarray(event).astype(bool)
    r = np.asarray(risk, dtype=np.float64)
    if not e.any():
        raise ValueError("all patients are censored")
    if not np.isfinite(r).all():
        raise ValueError("risk scores must be finite")
    events = np.flatnonzero(e)
    n_blocks = max(1, len(events) * len(t) // 4_000_000 + 1)  # ~4M pairs per block
    num = den = 0.0
    for block in np.array_split(events, n_blocks):
        ti, ri = t[block, None], r[block, None]
        comparable = (t > ti) | ((t == ti) & ~e)
        diff = ri - r
        ties = np.abs(diff) <= tied_tol
        num += float(np.count_nonzero(comparable & (diff > 0) & ~ties)) \
            + 0.5 * float(np.count_nonzero(comparable & ties))
        den += float(np.count_nonzero(comparable))
    if den == 0:
        raise ValueError("no comparable pair of patients")
    return num / den
