"""External validation: the final models' scores of a cohort against its outcomes.

The metrics are the cross-validation's, with the same definitions and the same seeded
bootstrap over patients (evaluation/evaluate.py): survival, Harrell's and Uno's c-index
(``uno_tau: auto`` is the 80th percentile of *this* cohort's follow-up), td-AUC at
``evaluate.horizons``, the integrated Brier score of the final model's survival curves, and
the log-rank p of the risk groups at the **training cohort's threshold** (the Kaplan-Meier
plot shows them with numbers at risk); binary, AUC, average precision and balanced accuracy at
the training threshold. Paired comparisons (every model against ``evaluate.reference``, each
student against the baselines and controls that were scored) are the CV's
(evaluation/compare.py), on the patients both scored.

Only scored patients with an outcome enter; the others are listed in the log and counted in
``metrics.tsv`` through ``n_patients``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from histodistill.deploy.bundle import read_manifest
from histodistill.errors import InputError
from histodistill.evaluation.compare import compare
from histodistill.evaluation.curves import grid_for, interpolate, surv_columns
from histodistill.evaluation.evaluate import (
    COLUMNS,
    NAN,
    EvalParams,
    binary_rows,
    plot_cindex,
    plot_roc,
    survival_rows,
)
from histodistill.evaluation.km import plot_km
from histodistill.io import write_tsv
from histodistill.sheets import read_clinical
from histodistill.training.task import Task

log = logging.getLogger(__name__)


def bundle_task(manifests: dict[str, str | Path]) -> Task:
    """The one task of a scored cohort's bundles."""
    tasks = {name: Task(**read_manifest(m)["task"]) for name, m in manifests.items()}
    if len(set(tasks.values())) > 1:
        raise InputError(f"the bundles scoring one cohort must share a task; got {tasks}")
    return next(iter(tasks.values()))


def with_outcomes(name: str, preds_tsv: str | Path, clinical: pd.DataFrame, task: Task,
                  clinical_tsv: str | Path) -> pd.DataFrame:
    """Scored patients with an outcome, joined with it (time/event, or label)."""
    preds = pd.read_csv(preds_tsv, sep="\t", dtype={"patient": str}, keep_default_na=False,
                        na_values=[""])
    scored = preds[preds["status"] == "scored"].set_index("patient")
    if task.type == "binary":
        outcome = task.labels(clinical, clinical_tsv).rename("label").dropna().to_frame()
    else:
        outcome = clinical[["time", "event"]]
    without = sorted(set(scored.index) - set(outcome.index))
    if without:
        log.warning("%s: %d scored patients have no outcome in %s and are not validated: %s",
                    name, len(without), clinical_tsv, ", ".join(without[:10]))
    joined = scored.drop(columns=[c for c in ("time", "event", "label") if c in scored]) \
        .join(outcome, how="inner").reset_index()
    if joined.empty:
        raise InputError(f"{clinical_tsv}: none of the patients scored in {preds_tsv} has an "
                         "outcome; check the patient IDs of the two sheets")
    return joined


def validate_external(predictions: dict[str, str | Path], manifests: dict[str, str | Path],
                      clinical_tsv: str | Path, out_metrics: str | Path,
                      out_cindex_png: str | Path, curve_pngs: dict[str, str | Path],
                      params: EvalParams | None = None) -> pd.DataFrame:
    """``predictions`` / ``manifests``: name -> the cohort's predictions of that bundle and
    the bundle's manifest; ``curve_pngs``: name -> Kaplan-Meier (ROC for binary) plot."""
    params = params or EvalParams()
    task = bundle_task(manifests)
    clinical = read_clinical(clinical_tsv)
    tests = {n: with_outcomes(n, p, clinical, task, clinical_tsv)
             for n, p in predictions.items()}
    if task.type == "survival":
        follow_up = pd.concat(tests.values()).drop_duplicates("patient")["time"].to_numpy()
        params = params.with_uno_tau(follow_up)
    rows: list[dict[str, Any]] = []
    for name, test in tests.items():
        rows += _rows(name, test, read_manifest(manifests[name]), task, params,
                      curve_pngs[name])
    rows += compare(tests, task, params)
    metrics = pd.DataFrame(rows, columns=COLUMNS)
    write_tsv(out_metrics, metrics)
    plot_cindex(metrics, out_cindex_png, "auc" if task.type == "binary" else "cindex")
    return metrics


def _rows(name: str, test: pd.DataFrame, manifest: dict[str, Any], task: Task,
          params: EvalParams, curve_png: str | Path) -> list[dict[str, Any]]:
    title = f"{name}: external, training threshold"
    if task.type == "binary":
        plot_roc(test, title, curve_png)
        predicted = (test["risk_group"] == "positive").to_numpy(int)
        return binary_rows(name, test, predicted, params)
    times = np.asarray(manifest["survival_times"], dtype=np.float64)
    cols = surv_columns(test)
    if len(cols) != len(times):
        raise InputError(f"{name}: {len(cols)} surv_* columns, but its bundle has "
                         f"{len(times)} survival times; re-run score_cohort")
    grid = grid_for(test["time"].to_numpy())
    surv = interpolate(test[cols].to_numpy(np.float64), np.r_[0.0, times], grid)
    rows = survival_rows(name, test, surv, grid, params)
    p = plot_km(test.assign(high_risk=test["risk_group"] == "high"), title, curve_png)
    rows.append({**rows[0], "metric": "logrank_p", "value": p, "ci_low": NAN, "ci_high": NAN})
    log.info("%s: external c-index %.3f [%.3f, %.3f] (CV on %s: %s), log-rank p %.3g", name,
             rows[0]["value"], rows[0]["ci_low"], rows[0]["ci_high"],
             manifest["training"]["cohort"],
             next((f"{m['value']:.3f}" for m in manifest["training"]["cv_metrics"]
                   if m["metric"] == "cindex" and m["value"] is not None), "n/a"), p)
    return rows
