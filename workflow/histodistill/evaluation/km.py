"""Kaplan-Meier curves of out-of-fold risk groups, with log-rank test and numbers at risk."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sksurv.compare import compare_survival  # noqa: E402
from sksurv.nonparametric import kaplan_meier_estimator  # noqa: E402
from sksurv.util import Surv  # noqa: E402

from histodistill.io import atomic_path  # noqa: E402


def risk_groups(preds: pd.DataFrame) -> pd.DataFrame:
    """Test-role patients with ``high_risk``: risk above the median risk of the same fold's
    *training* patients (a threshold the test fold never influenced)."""
    groups = []
    for _, fold in preds.groupby("fold"):
        threshold = fold.loc[fold["role"] == "train", "risk"].median()
        test = fold[fold["role"] == "test"].copy()
        test["high_risk"] = test["risk"] > threshold
        groups.append(test)
    return pd.concat(groups, ignore_index=True)


def logrank_p(time: np.ndarray, event: np.ndarray, group: np.ndarray) -> float:
    if len(np.unique(group)) < 2:
        return float("nan")
    _, p = compare_survival(Surv.from_arrays(event.astype(bool), time), group)
    return float(p)


def plot_km(test: pd.DataFrame, title: str, out_png: str | Path) -> float:
    """Plot KM curves of the low/high groups; returns the log-rank p-value."""
    time, event = test["time"].to_numpy(float), test["event"].to_numpy(int)
    group = test["high_risk"].to_numpy(bool)
    p = logrank_p(time, event, group.astype(int))
    fig, (ax, table) = plt.subplots(2, 1, figsize=(6, 4.8), height_ratios=[4, 1], sharex=True)
    ticks = np.linspace(0, time.max(), 6)
    rows = []
    for value, label, colour in ((False, "low risk", "#4c72b0"), (True, "high risk", "#c44e52")):
        sel = group == value
        if not sel.any():
            continue
        t, s = kaplan_meier_estimator(event[sel].astype(bool), time[sel])
        ax.step(np.r_[0, t], np.r_[1, s], where="post", color=colour,
                label=f"{label} (n={sel.sum()}, events={event[sel].sum()})")
        censored = sel & (event == 0)
        ax.plot(time[censored], np.interp(time[censored], np.r_[0, t], np.r_[1, s]), "|",
                color=colour, markersize=6)
        rows.append((label, colour, [int((time[sel] >= x).sum()) for x in ticks]))
    ax.set(ylabel="survival probability", ylim=(0, 1.02),
           title=f"{title}\nlog-rank p = {p:.3g}" if np.isfinite(p) else title)
    ax.legend(frameon=False, loc="lower left", fontsize=8)
    table.set_axis_off()
    table.text(0, 1.0, "at risk", transform=table.transAxes, fontsize=8, va="top")
    for r, (label, colour, counts) in enumerate(rows):
        y = 0.6 - 0.35 * r
        table.annotate(label, (-0.02, y), xycoords=("axes fraction", "data"), ha="right",
                       va="center", color=colour, fontsize=8, annotation_clip=False)
        for x, c in zip(ticks, counts, strict=True):
            table.text(x, y, str(c), color=colour, ha="center", va="center", fontsize=8)
    table.set_xlabel("time (months)")
    ax.tick_params(labelbottom=True)
    ax.set_xlabel("time (months)")
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
    return p
