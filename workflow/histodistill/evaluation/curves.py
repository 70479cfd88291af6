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
        train_max = float(part.loc[part["role"] == "train", "time"].max())
        last = max(train_max, fold_cuts_[-1] + 1e-6) if len(fold_cuts_) else train_max
        knots_t = np.r_[0.0, fold_cuts_, last]
        test = part[part["role"] == "test"]
        s = test[cols].to_numpy(np.float64)
        knots_s = np.c_[np.ones(len(test)), s]
        curves.append(np.stack([np.interp(grid, knots_t, row) for row in knots_s])
                      if len(test) else np.empty((0, len(grid))))
        tests.append(test)
    return pd.concat(tests, ignore_index=True), np.concatenate(curves, axis=0)
