"""Paired comparisons of models on the patients both predicted.

Two kinds are made: every model against ``evaluate.reference`` (the histology-only floor), and
each distilled student - a histology-only model trained with the privileged vector, directly or
through a teacher - against what would explain its result without the RNA: the strong simple
baseline ``wsi_meanpool``, ``wsi_abmil``, and its controls (its permuted twin; for student_kd,
self-distillation from wsi_abmil). Each pair gives ``{headline}_diff_vs_{other}`` (difference
and paired-bootstrap 95% CI), ``{headline}_diff_p_vs_{other}`` (two-sided bootstrap p-value,
floored at 1/B: B resamples cannot resolve a smaller one) and
``{headline}_diff_p_holm_vs_{other}``: Holm's step-down adjustment over every comparison of
the cohort's metrics.tsv (their number is the count of these rows), so that a reader who picks
the smallest p among many is not misled.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from histodistill.evaluation.metrics import harrell_cindex, paired_bootstrap
from histodistill.models.catalog import CATALOG, controls_of
from histodistill.training.task import Task

if TYPE_CHECKING:
    from histodistill.evaluation.evaluate import EvalParams

log = logging.getLogger(__name__)
Stat = Callable[[np.ndarray], float]

NAN = float("nan")
BASELINES = ("wsi_meanpool", "wsi_abmil")  # histology-only models a student must beat


def headline_stat(task: Task, test: pd.DataFrame) -> Stat:
    """The task's headline metric as a function of patient indices into ``test``."""
    if task.type == "binary":
        from sklearn.metrics import roc_auc_score

        y, p = test["label"].to_numpy().astype(int), test["risk"].to_numpy()

        def auc(i: np.ndarray) -> float:
            if len(np.unique(y[i])) < 2:
                raise ValueError("one class only")
            return float(roc_auc_score(y[i], p[i]))
        return auc
    t, e, r = (test[c].to_numpy() for c in ("time", "event", "risk"))
    return lambda i: harrell_cindex(t[i], e[i], r[i])



def is_student(model: str) -> bool:
    """A histology-only model whose training reads the privileged vector (not a control)."""
    info = CATALOG.get(model)
    return info is not None and info.histology_only and info.uses_rna and info.control is None


def comparison_pairs(models: list[str], reference: str) -> list[tuple[str, str]]:
    """(model, other) pairs: every model against ``reference`` (when it was run), then each
    student against the baselines and its controls that were run; no pair twice."""
    pairs = [(m, reference) for m in models if m != reference] if reference in models else []
    if reference not in models:
        log.warning("reference model %s not evaluated; no comparisons against it", reference)
    for m in models:
        if is_student(m):
            pairs += [(m, o) for o in (*BASELINES, *controls_of(m))
                      if o in models and (m, o) not in pairs]
    return pairs


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN entries are left out and stay NaN)."""
    p = np.asarray(p, dtype=np.float64)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(np.isfinite(p))
    order = ok[np.argsort(p[ok], kind="mergesort")]
    m = len(order)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def compare(tests: dict[str, pd.DataFrame], task: Task, params: EvalParams
            ) -> list[dict[str, Any]]:
    """metrics.tsv rows of every pair of :func:`comparison_pairs`."""
    name = "auc" if task.type == "binary" else "cindex"
    rows: list[dict[str, Any]] = []
    p_rows = []
    for model, other in comparison_pairs(list(tests), params.reference):
        ref_test = tests[other].set_index("patient")
        test = tests[model]
        common = sorted(set(test["patient"]) & set(ref_test.index))
        if len(common) < len(test) or len(common) < len(ref_test):
            log.warning("%s vs %s: compared on the %d patients both predicted", model, other,
                        len(common))
        a = test.set_index("patient").loc[common].reset_index()
        b = ref_test.loc[common].reset_index()
        stat_a, stat_b = headline_stat(task, a), headline_stat(task, b)
        lo, hi, p = paired_bootstrap(stat_a, stat_b, len(common), params.n_bootstrap,
                                     params.seed)
        idx = np.arange(len(common))
        events = a["label"] if task.type == "binary" else a["event"]
        base = {"model": model, "task": task.type, "n_patients": len(common),
                "n_events": int(events.sum()), "ci_low": NAN, "ci_high": NAN}
        rows += [{**base, "metric": f"{name}_diff_vs_{other}",
                  "value": stat_a(idx) - stat_b(idx), "ci_low": lo, "ci_high": hi},
                 {**base, "metric": f"{name}_diff_p_vs_{other}", "value": p}]
        p_rows.append({**base, "metric": f"{name}_diff_p_holm_vs_{other}"})
    adjusted = holm(np.array([r["value"] for r in rows if "_diff_p_vs_" in r["metric"]]))
    return rows + [{**r, "value": float(v)} for r, v in zip(p_rows, adjusted, strict=True)]
