"""Cohort evaluation: metrics.tsv and plots from every model's out-of-fold predictions.

``metrics.tsv`` columns: model, task, metric, value, ci_low, ci_high, n_patients, n_events.
Every interval is a seeded percentile bootstrap over patients of the pooled out-of-fold set.
Survival task:

* ``cindex`` - Harrell's c-index of the pooled out-of-fold risks;
* ``cindex_uno`` - Uno's IPCW c-index, truncated at ``evaluate.uno_tau`` months (``auto``, the
  default: the 80th percentile of the cohort's observed follow-up times; null: no truncation);
  the time used is written as ``cindex_uno_tau`` (value in months);
* ``td_auc_{h}`` - cumulative/dynamic AUC at each horizon ``h`` of ``evaluate.horizons``
  (NaN, with a warning, for a horizon outside the follow-up);
* ``ibs`` - integrated Brier score of the predicted survival functions
  (:mod:`histodistill.evaluation.curves`) between the 10th and 90th percentile of follow-up;
* ``cindex_fold_mean`` / ``cindex_fold_sd`` - mean and SD of the per-fold c-indices (the
  convention of MCAT and its successors);
* ``logrank_p`` - log-rank test of the high/low risk groups (training-median threshold).

Binary task (``risk`` = predicted probability, ``label`` = the endpoint; ``n_events`` counts
positives):

* ``auc`` and ``average_precision`` of the pooled out-of-fold probabilities;
* ``balanced_accuracy`` at a threshold chosen per fold on that fold's *training* predictions
  (Youden's J), applied to its test patients, pooled.

Paired comparisons (every model against ``evaluate.reference``; each distilled student against
``wsi_meanpool``, ``wsi_abmil`` and its controls) are :mod:`histodistill.evaluation.compare`'s.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from histodistill.evaluation.compare import compare, headline_stat  # noqa: E402
from histodistill.evaluation.curves import (  # noqa: E402
    fold_cuts,
    grid_for,
    surv_columns,
    survival_on_grid,
)
from histodistill.evaluation.km import plot_km, risk_groups  # noqa: E402
from histodistill.evaluation.metrics import (  # noqa: E402
    bootstrap_ci,
    bootstrap_cis,
    harrell_cindex,
    integrated_brier,
    td_aucs,
    uno_cindex,
)
from histodistill.io import atomic_path, write_tsv  # noqa: E402
from histodistill.params import from_config  # noqa: E402
from histodistill.training.task import Task  # noqa: E402

log = logging.getLogger(__name__)

COLUMNS = ["model", "task", "metric", "value", "ci_low", "ci_high", "n_patients", "n_events"]
NAN = float("nan")
UNO_QUANTILE = 0.8  # uno_tau: auto truncates Uno's c-index at this quantile of follow-up
Stat = Callable[[np.ndarray], float]


@dataclass(frozen=True)
class EvalParams:
    n_bootstrap: int = 1000
    seed: int = 0
    horizons: tuple[float, ...] = (12.0, 36.0, 60.0)  # months, for td_auc
    # months; truncation of Uno's c-index ("auto": 80th percentile of follow-up; None: none)
    uno_tau: float | str | None = "auto"
    reference: str = "wsi_abmil"  # the model every other one is compared with
    attention_patients: int = 2  # attention maps for this many patients per risk group

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> EvalParams:
        params = from_config(cls, cfg, "evaluate")
        return replace(params, horizons=tuple(float(h) for h in params.horizons))

    def with_uno_tau(self, time: np.ndarray) -> EvalParams:
        """``uno_tau: auto`` resolved on the cohort's observed follow-up times ``time``."""
        if self.uno_tau != "auto":
            return self
        return replace(self, uno_tau=float(np.quantile(np.asarray(time, float), UNO_QUANTILE)))


def read_predictions(files: list[str | Path]) -> pd.DataFrame:
    return pd.concat([pd.read_csv(f, sep="\t", dtype={"patient": str}) for f in files],
                     ignore_index=True)


def metric_row(base: dict[str, Any], name: str, stat: Stat, n: int, params: EvalParams
            ) -> dict[str, Any]:
    """One metrics.tsv row: ``stat`` on all ``n`` patients and its bootstrap CI. A metric that
    is undefined on these patients (e.g. a horizon beyond the follow-up) is NaN, logged."""
    try:
        value = float(stat(np.arange(n)))
    except ValueError as exc:
        log.warning("%s: %s is undefined here (%s); written as NaN", base["model"], name, exc)
        value = NAN
    lo, hi = bootstrap_ci(stat, n, params.n_bootstrap, params.seed) \
        if np.isfinite(value) else (NAN, NAN)
    return {**base, "metric": name, "value": value, "ci_low": lo, "ci_high": hi}


def td_auc_rows(base: dict[str, Any], t: np.ndarray, e: np.ndarray, r: np.ndarray,
                 params: EvalParams) -> list[dict[str, Any]]:
    """One row per horizon; all horizons come from one fit per bootstrap resample."""
    if not params.horizons:
        return []
    values = td_aucs(t, e, r, params.horizons)
    lo, hi = bootstrap_cis(lambda i: td_aucs(t[i], e[i], r[i], params.horizons), len(t),
                           params.n_bootstrap, params.seed)
    rows = []
    for k, h in enumerate(params.horizons):
        if not np.isfinite(values[k]):
            log.warning("%s: td_auc at %g months is undefined (outside the follow-up "
                        "[%.3g, %.3g) or no event before it); written as NaN", base["model"],
                        h, t.min(), t.max())
            lo[k] = hi[k] = NAN
        rows.append({**base, "metric": f"td_auc_{h:g}", "value": float(values[k]),
                     "ci_low": float(lo[k]), "ci_high": float(hi[k])})
    return rows


def survival_metrics(model: str, preds: pd.DataFrame, params: EvalParams,
                     cuts: dict[int, list[float]] | None = None) -> list[dict[str, Any]]:
    test = _test_rows(model, preds)
    surv, grid = None, None
    if cuts is not None and surv_columns(preds):
        grid = grid_for(test["time"].to_numpy())
        test, surv = survival_on_grid(preds, cuts, grid)  # the same rows, in ``surv``'s order
    else:
        log.warning("%s: no survival curves or interval cuts; integrated Brier score skipped",
                    model)
    rows = survival_rows(model, test, surv, grid, params)
    base = {k: rows[0][k] for k in ("model", "task", "n_patients", "n_events")}
    per_fold = [harrell_cindex(f["time"], f["event"], f["risk"])
                for _, f in test.groupby("fold") if f["event"].sum() > 0]
    rows += [
        {**base, "metric": "cindex_fold_mean", "value": float(np.mean(per_fold)),
         "ci_low": NAN, "ci_high": NAN},
        {**base, "metric": "cindex_fold_sd", "value": float(np.std(per_fold, ddof=1))
         if len(per_fold) > 1 else NAN, "ci_low": NAN, "ci_high": NAN},
    ]
    return rows


def survival_rows(model: str, test: pd.DataFrame, surv: np.ndarray | None,
                  grid: np.ndarray | None, params: EvalParams) -> list[dict[str, Any]]:
    """The survival metrics of one set of patients (``test``: time, event, risk; ``surv``:
    their S at ``grid``, or None): c-index, Uno's c-index and its tau, td-AUCs, IBS. The CV
    evaluation and the external validation share them, so both mean the same."""
    t, e, r = (test[c].to_numpy() for c in ("time", "event", "risk"))
    n, n_events = len(test), int(e.sum())
    base = {"model": model, "task": "survival", "n_patients": n, "n_events": n_events}
    tau = params.with_uno_tau(t).uno_tau  # evaluate resolves it once for all models
    rows = [metric_row(base, "cindex", headline_stat(Task(), test), n, params),
            metric_row(base, "cindex_uno", lambda i: uno_cindex(t[i], e[i], r[i], tau), n,
                       params),
            {**base, "metric": "cindex_uno_tau", "value": NAN if tau is None else tau,
             "ci_low": NAN, "ci_high": NAN}]
    rows += td_auc_rows(base, t, e, r, params)
    if surv is not None and grid is not None:
        rows.append(metric_row(base, "ibs",
                               lambda i: integrated_brier(t[i], e[i], surv[i], grid), n, params))
    return rows


def _test_rows(model: str, preds: pd.DataFrame) -> pd.DataFrame:
    test = preds[preds["role"] == "test"]
    dup = test["patient"].duplicated()
    if dup.any():
        raise ValueError(f"{model}: patients in more than one test fold: "
                         f"{test.loc[dup, 'patient'].tolist()[:5]}")
    return test.reset_index(drop=True)


def youden_threshold(label: np.ndarray, prob: np.ndarray) -> float:
    """The probability cut maximising sensitivity + specificity - 1 (0.5 if one class)."""
    from sklearn.metrics import roc_curve

    if len(np.unique(label)) < 2:
        return 0.5
    fpr, tpr, thr = roc_curve(label, prob)
    return float(np.clip(thr[int(np.argmax(tpr - fpr))], 0.0, 1.0))


def binary_metrics(model: str, preds: pd.DataFrame, params: EvalParams
                   ) -> list[dict[str, Any]]:
    test = _test_rows(model, preds)
    p = test["risk"].to_numpy()
    predicted = np.zeros(len(test), dtype=int)
    for fold, part in preds.groupby("fold"):
        train = part[part["role"] == "train"]
        cut = youden_threshold(train["label"].to_numpy().astype(int), train["risk"].to_numpy())
        in_fold = (test["fold"] == fold).to_numpy()
        predicted[in_fold] = (p[in_fold] >= cut).astype(int)
    return binary_rows(model, test, predicted, params)


def binary_rows(model: str, test: pd.DataFrame, predicted: np.ndarray, params: EvalParams
                ) -> list[dict[str, Any]]:
    """AUC, average precision and balanced accuracy of ``test`` (label, risk = probability;
    ``predicted``: 0/1 at a threshold chosen without these patients)."""
    from sklearn.metrics import average_precision_score, balanced_accuracy_score

    y, p = test["label"].to_numpy().astype(int), test["risk"].to_numpy()
    n = len(test)
    base = {"model": model, "task": "binary", "n_patients": n, "n_events": int(y.sum())}

    def ap(i: np.ndarray) -> float:
        if len(np.unique(y[i])) < 2:
            raise ValueError("one class only")
        return float(average_precision_score(y[i], p[i]))

    return [metric_row(base, "auc", headline_stat(Task("binary", "label"), test), n, params),
            metric_row(base, "average_precision", ap, n, params),
            metric_row(base, "balanced_accuracy",
                       lambda i: float(balanced_accuracy_score(y[i], predicted[i])), n, params)]


def plot_roc(test: pd.DataFrame, title: str, out_png: str | Path) -> None:
    from sklearn.metrics import roc_auc_score, roc_curve

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    y, p = test["label"].to_numpy().astype(int), test["risk"].to_numpy()
    if len(np.unique(y)) == 2:
        fpr, tpr, _ = roc_curve(y, p)
        ax.plot(fpr, tpr, color="#1f4e79", lw=2, label=f"AUC {roc_auc_score(y, p):.3f}")
        ax.legend(loc="lower right")
    ax.plot([0, 1], [0, 1], color="#999999", ls="--", lw=1)
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title=title, xlim=(0, 1),
           ylim=(0, 1))
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def plot_cindex(metrics: pd.DataFrame, out_png: str | Path, metric: str = "cindex") -> None:
    rows = metrics[metrics["metric"] == metric].reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(6, 0.5 + 0.45 * len(rows)))
    y = np.arange(len(rows))[::-1]
    ax.errorbar(rows["value"], y, xerr=[rows["value"] - rows["ci_low"],
                                        rows["ci_high"] - rows["value"]],
                fmt="o", color="#333333", capsize=3)
    ax.axvline(0.5, color="#999999", ls="--", lw=1)
    ax.set_yticks(y, rows["model"])
    label = {"cindex": "c-index", "auc": "ROC AUC"}[metric]
    ax.set(xlabel=f"out-of-fold {label} (95% bootstrap CI)", xlim=(0, 1))
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def _model_metrics(model: str, preds: pd.DataFrame, cuts: dict[int, list[float]] | None,
                   params: EvalParams, task: Task) -> list[dict[str, Any]]:
    if task.type == "binary":
        return binary_metrics(model, preds, params)
    return survival_metrics(model, preds, params, cuts)


def model_cv_metrics(model: str, prediction_files: list[str | Path], params: EvalParams,
                     task: Task) -> list[dict[str, Any]]:
    """One model's rows of metrics.tsv (its comparisons aside), from its own predictions:
    what a model bundle records of its cross-validation (``uno_tau: auto`` resolved on this
    model's out-of-fold patients)."""
    from histodistill.evaluation.km import logrank_p

    preds = read_predictions(prediction_files)
    if task.type == "binary":
        return binary_metrics(model, preds, params)
    test = _test_rows(model, preds)
    rows = survival_metrics(model, preds, params.with_uno_tau(test["time"].to_numpy()),
                            fold_cuts(prediction_files))
    groups = risk_groups(preds)
    p = logrank_p(groups["time"].to_numpy(float), groups["event"].to_numpy(int),
                  groups["high_risk"].to_numpy(int))
    return rows + [{**rows[0], "metric": "logrank_p", "value": p, "ci_low": NAN,
                    "ci_high": NAN}]


def evaluate(predictions: dict[str, list[str]], out_metrics: str | Path,
             out_cindex_png: str | Path, km_pngs: dict[str, str],
             params: EvalParams | None = None, task: Task | None = None,
             threads: int = 1) -> pd.DataFrame:
    """``predictions``: model -> its per-fold predictions.tsv files (each with its meta.json
    beside it for survival tasks); ``km_pngs``: model -> output path of its Kaplan-Meier plot
    (ROC curve for a binary task). Models are evaluated in ``threads`` processes (the
    bootstraps dominate; the result does not depend on ``threads``)."""
    from concurrent.futures import ProcessPoolExecutor

    task = task or Task()
    params = params or EvalParams()
    models = list(predictions)
    preds_of = {m: read_predictions(predictions[m]) for m in models}
    if task.type == "survival":
        follow_up = pd.concat([_test_rows(m, p) for m, p in preds_of.items()])
        params = params.with_uno_tau(follow_up.drop_duplicates("patient")["time"].to_numpy())
    cuts_of = {m: fold_cuts(files) if task.type == "survival" and
               all(Path(f).with_name("meta.json").exists() for f in files) else None
               for m, files in predictions.items()}
    args = ([preds_of[m] for m in models], [cuts_of[m] for m in models],
            [params] * len(models), [task] * len(models))
    if threads > 1 and len(models) > 1:
        with ProcessPoolExecutor(min(threads, len(models))) as pool:
            per_model = list(pool.map(_model_metrics, models, *args))
    else:
        per_model = list(map(_model_metrics, models, *args))
    rows: list[dict[str, Any]] = []
    tests = {}
    for model, model_rows in zip(models, per_model, strict=True):
        preds = preds_of[model]
        tests[model] = _test_rows(model, preds)
        if task.type == "binary":
            plot_roc(tests[model], f"{model}: out-of-fold {task.name}", km_pngs[model])
            rows += model_rows
            continue
        p = plot_km(risk_groups(preds), f"{model}: out-of-fold risk groups", km_pngs[model])
        model_rows.append({**model_rows[0], "metric": "logrank_p", "value": p,
                           "ci_low": NAN, "ci_high": NAN})
        rows += model_rows
        log.info("%s: c-index %.3f [%.3f, %.3f], log-rank p %.3g", model,
                 model_rows[0]["value"], model_rows[0]["ci_low"], model_rows[0]["ci_high"], p)
    rows += compare(tests, task, params)
    metrics = pd.DataFrame(rows, columns=COLUMNS)
    write_tsv(out_metrics, metrics)
    plot_cindex(metrics, out_cindex_png, "auc" if task.type == "binary" else "cindex")
    return metrics
