"""metrics.tsv as the tables a reader wants: one row per model with intervals, and the paired
comparisons with the reference model."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

# metric -> column heading, in display order (metrics absent from the file are left out)
HEADINGS = {
    "cindex": "c-index (Harrell)", "cindex_uno": "c-index (Uno)", "ibs": "IBS",
    "cindex_fold_mean": "fold mean c-index", "logrank_p": "log-rank p",
    "auc": "ROC AUC", "average_precision": "average precision",
    "balanced_accuracy": "balanced accuracy",
}


def fmt(v: Any, missing: str = "n/a", small: str = ".2g") -> str:
    """Three decimals; a number under 1e-3 (a p-value) in ``small`` format; NaN as
    ``missing``."""
    if isinstance(v, float):
        if math.isnan(v):
            return missing
        return f"{v:{small}}" if abs(v) < 1e-3 and v != 0 else f"{v:.3f}"
    return str(v)


def _with_ci(row: pd.Series) -> str:
    if math.isnan(row["ci_low"]):
        return fmt(float(row["value"]))
    return f"{fmt(float(row['value']))} [{fmt(float(row['ci_low']))}, " \
           f"{fmt(float(row['ci_high']))}]"


def _order(metrics: pd.DataFrame) -> list[str]:
    present = list(dict.fromkeys(metrics["metric"]))
    ordered = [m for m in HEADINGS if m in present and m != "logrank_p"]
    ordered += [m for m in present if m.startswith("td_auc_")]
    return ordered + (["logrank_p"] if "logrank_p" in present else [])


def heading(metric: str) -> str:
    if metric.startswith("td_auc_"):
        return f"AUC({metric.removeprefix('td_auc_')} mo)"
    return HEADINGS[metric]


def model_table(metrics: pd.DataFrame) -> tuple[list[str], list[dict[str, str]]]:
    """Headings and one row per model: 'value [ci_low, ci_high]' per metric, the fold mean as
    'mean ± SD', patients and events."""
    per_model = metrics[~metrics["metric"].str.contains("_vs_")]
    cols = _order(per_model)
    rows = []
    for model, part in per_model.groupby("model", sort=False):
        by = part.set_index("metric")
        row = {"model": str(model), "patients": str(int(part["n_patients"].iloc[0])),
               "events": str(int(part["n_events"].iloc[0]))}
        for m in cols:
            if m not in by.index:
                row[heading(m)] = ""
            elif m == "cindex_fold_mean" and "cindex_fold_sd" in by.index:
                row[heading(m)] = (f"{fmt(float(by.at[m, 'value']))} ± "
                                   f"{fmt(float(by.at['cindex_fold_sd', 'value']))}")
            else:
                row[heading(m)] = _with_ci(by.loc[m])
        rows.append(row)
    return ["model", "patients", "events", *[heading(m) for m in cols]], rows


def comparison_table(metrics: pd.DataFrame) -> list[dict[str, str]]:
    """One row per model compared with the reference: difference [CI] and bootstrap p."""
    diffs = metrics[metrics["metric"].str.contains("_diff_vs_")]
    rows = []
    for r in diffs.itertuples(index=False):
        metric, ref = str(r.metric).split("_diff_vs_")
        p = metrics[(metrics["model"] == r.model)
                    & (metrics["metric"] == f"{metric}_diff_p_vs_{ref}")]["value"]
        rows.append({"model": str(r.model), "reference": ref,
                     "metric": HEADINGS.get(metric, metric), "patients": str(r.n_patients),
                     "difference": _with_ci(pd.Series(r._asdict())),
                     "p": fmt(float(p.iloc[0])) if len(p) else "n/a"})
    return rows
