"""Survival functions S(t) of out-of-fold patients, on one time grid shared by every fold.

A discrete-time model predicts ``surv_j`` = P(T beyond the end of interval j) at its fold's
interval ends: the inner cuts (from ``meta.json``) and, for the open last interval, the fold's
longest *training* follow-up (the likelihood treats a patient censored in the last interval
as surviving it). Between interval ends S(t) is interpolated linearly (constant event density
within an interval, pycox's "CDI"), from S(0) = 1; after the last end it stays flat.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from histodistill.errors import InputError


def surv_columns(preds: pd.DataFrame) -> list[str]:
    cols = [c for c in preds.columns if c.startswith("surv_")]
    return sorted(cols, key=lambda c: int(c.removeprefix("surv_")))


def fold_cuts(prediction_files: list[str | Path]) -> dict[int, list[float]]:
    """{fold: inner interval cuts} from the ``meta.json`` written beside each predictions.tsv."""
    cuts = {}
    for f in prediction_files:
        meta_path = Path(f).with_name("meta.json")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            cuts[int(meta["fold"])] = [float(c) for c in meta["bin_cuts"]]
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"{meta_path}: cannot read the fold's time intervals ({exc}); "
                             "re-run the model's train job") from None
    return cuts


def grid_for(time: np.ndarray, n: int = 50, quantiles: tuple[float, float] = (0.1, 0.9)
             ) -> np.ndarray:
    """The integration grid of the integrated Brier score: ``n`` points between the 10th and
    90th percentiles of the observed follow-up times (where censoring weights are stable)."""
    lo, hi = np.quantile(np.asarray(time, dtype=np.float64), quantiles)
    return np.linspace(lo, hi, n)


def survival_on_grid(preds: pd.DataFrame, cuts: dict[int, list[float]], grid: np.ndarray
                     ) -> tuple[pd.DataFrame, np.ndarray]:
    """The test rows of ``preds`` (every fold) and their S(t) at ``grid``, shape (n, len(grid))."""
    cols = surv_columns(preds)
    tests, curves = [], []
    for fold, part in preds.groupby("fold"):
        if fold not in cuts:
            raise InputError(f"no interval cuts for fold {fold}")
        fold_cuts_ = np.asarray(cuts[int(fold)], dtype=np.float64)
        if len(fold_cuts_) + 1 != len(cols):
            raise InputError(f"fold {fold}: {len(fold_cuts_)} cuts do not match "
                             f"{len(cols)} surv_* columns of its predictions")
        knots_t = fold_knots(fold_cuts_, part.loc[part["role"] == "train", "time"].to_numpy())
        test = part[part["role"] == "test"]
        curves.append(interpolate(test[cols].to_numpy(np.float64), knots_t, grid))
        tests.append(test)
    return pd.concat(tests, ignore_index=True), np.concatenate(curves, axis=0)


def fold_knots(cuts: np.ndarray, train_times: np.ndarray) -> np.ndarray:
    """The times at which a fold's model predicts S: 0, the inner cuts and the end of the
    open last interval (the fold's longest training follow-up)."""
    cuts = np.asarray(cuts, dtype=np.float64)
    train_max = float(np.max(train_times))
    last = max(train_max, cuts[-1] + 1e-6) if len(cuts) else train_max
    return np.r_[0.0, cuts, last]


def interpolate(surv: np.ndarray, knots: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """S at ``grid`` (n, len(grid)) from ``surv`` (n, len(knots) - 1) at ``knots[1:]``, with
    S(knots[0]) = 1; linear between knots, flat after the last."""
    surv = np.asarray(surv, dtype=np.float64).reshape(-1, len(knots) - 1)
    full = np.c_[np.ones(len(surv)), surv]
    return np.stack([np.interp(grid, knots, row) for row in full]) if len(surv) \
        else np.empty((0, len(grid)))
