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


def p_value(p: float, n_boot: int) -> str:
    """A bootstrap p-value; at its floor 1/B (no resample on the other side of 0) as '< 1/B'."""
    if math.isnan(p):
        return "n/a"
    if n_boot > 0 and p <= 1 / n_boot * (1 + 1e-9):
        return f"< {fmt(1 / n_boot)}"
    return fmt(p)


def comparison_p(of_model: pd.Series, metric: str, other: str, n_boot: int
                 ) -> dict[str, str]:
    """``p`` and ``p_holm`` of one comparison, from one model's metric -> value."""
    out = {}
    for kind in ("p", "p_holm"):
        key = f"{metric}_diff_{kind}_vs_{other}"
        out[kind] = p_value(float(of_model[key]), n_boot) if key in of_model.index else "n/a"
    return out


def comparison_table(metrics: pd.DataFrame, n_boot: int) -> list[dict[str, str]]:
    """One row per paired comparison: difference [CI], bootstrap p and Holm-adjusted p."""
    diffs = metrics[metrics["metric"].str.contains("_diff_vs_")]
    rows = []
    for r in diffs.itertuples(index=False):
        metric, ref = str(r.metric).split("_diff_vs_")
        of_model = metrics[metrics["model"] == r.model].set_index("metric")["value"]
        rows.append({"model": str(r.model), "reference": ref,
                     "metric": HEADINGS.get(metric, metric), "patients": str(r.n_patients),
                     "difference": _with_ci(pd.Series(r._asdict())),
                     **comparison_p(of_model, metric, ref, n_boot)})
    return rows


def _chosen(trial: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in trial["params"].items()) or "configured values"


def tuning_table(metas: list[dict[str, Any]]) -> list[dict[str, str]]:
    """One row per model and fold, from meta.json: candidates tried, the one kept (its values
    where they differ from train:), its inner-validation score, and the agreement of the
    inner-validation risks from training-sized and from full bags."""
    rows = []
    for meta in metas:
        tuning = meta.get("tuning") or {}
        trials = tuning.get("trials") or []
        chosen = trials[tuning.get("chosen", 0)] if trials else None
        agree = meta.get("bag_agreement") or {}
        rho = agree.get("spearman")
        rows.append({
            "model": str(meta["model"]), "fold": str(meta["fold"]),
            "tried": str(len(trials)), "chosen": _chosen(chosen) if chosen else "",
            "val": fmt(float("nan") if chosen is None or chosen["val_score"] is None
                       else float(chosen["val_score"])),
            "agreement": "n/a" if rho is None else
            f"{fmt(float(rho))} ({agree['val_patients_capped']} of {agree['val_patients']} "
            f"bags over {agree['max_patches']})"})
    return rows
