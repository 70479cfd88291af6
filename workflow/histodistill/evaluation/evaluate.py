"""Cohort evaluation: metrics.tsv and plots from every model's out-of-fold predictions.

``metrics.tsv`` columns: model, task, metric, value, ci_low, ci_high, n_patients, n_events.
Metrics (survival task):

* ``cindex`` - Harrell's c-index of the pooled out-of-fold risks, 95% bootstrap CI over
  patients (seeded);
* ``cindex_fold_mean`` / ``cindex_fold_sd`` - mean and SD of the per-fold c-indices (the
  convention of MCAT and its successors);
* ``logrank_p`` - log-rank test of the high/low risk groups (training-median threshold).

Binary task (``risk`` = predicted probability, ``label`` = the endpoint; ``n_events`` counts
positives):

* ``auc`` and ``average_precision`` of the pooled out-of-fold probabilities, bootstrap CIs;
* ``balanced_accuracy`` at a threshold chosen per fold on that fold's *training* predictions
  (Youden's J), applied to its test patients, pooled.
"""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from histodistill.evaluation.km import plot_km, risk_groups  # noqa: E402
from histodistill.evaluation.metrics import bootstrap_ci, harrell_cindex  # noqa: E402
from histodistill.io import atomic_path, write_tsv  # noqa: E402
from histodistill.training.task import Task  # noqa: E402

log = logging.getLogger(__name__)

COLUMNS = ["model", "task", "metric", "value", "ci_low", "ci_high", "n_patients", "n_events"]


def read_predictions(files: list[str | Path]) -> pd.DataFrame:
    return pd.concat([pd.read_csv(f, sep="\t", dtype={"patient": str}) for f in files],
                     ignore_index=True)


def survival_metrics(model: str, preds: pd.DataFrame, n_boot: int, seed: int
                     ) -> list[dict[str, object]]:
    test = _test_rows(model, preds)
    t, e, r = (test[c].to_numpy() for c in ("time", "event", "risk"))
    n, n_events = len(test), int(e.sum())
    base = {"model": model, "task": "survival", "n_patients": n, "n_events": n_events}
    c = harrell_cindex(t, e, r)
    lo, hi = bootstrap_ci(lambda i: harrell_cindex(t[i], e[i], r[i]), n, n_boot, seed)
    per_fold = [harrell_cindex(f["time"], f["event"], f["risk"])
                for _, f in test.groupby("fold") if f["event"].sum() > 0]
    nan = float("nan")
    return [
        {**base, "metric": "cindex", "value": c, "ci_low": lo, "ci_high": hi},
        {**base, "metric": "cindex_fold_mean", "value": float(np.mean(per_fold)),
         "ci_low": nan, "ci_high": nan},
        {**base, "metric": "cindex_fold_sd", "value": float(np.std(per_fold, ddof=1))
         if len(per_fold) > 1 else nan, "ci_low": nan, "ci_high": nan},
    ]


def _test_rows(model: str, preds: pd.DataFrame) -> pd.DataFrame:
    test = preds[preds["role"] == "test"]
    dup = test["patient"].duplicated()
    if dup.any():
        raise ValueError(f"{model}: patients in more than one test fold: "
                         f"{test.loc[dup, 'patient'].tolist()[:5]}")
    return test


def youden_threshold(label: np.ndarray, prob: np.ndarray) -> float:
    """The probability cut maximising sensitivity + specificity - 1 (0.5 if one class)."""
    from sklearn.metrics import roc_curve

    if len(np.unique(label)) < 2:
        return 0.5
    fpr, tpr, thr = roc_curve(label, prob)
    return float(np.clip(thr[int(np.argmax(tpr - fpr))], 0.0, 1.0))


def binary_metrics(model: str, preds: pd.DataFrame, n_boot: int, seed: int
                   ) -> list[dict[str, object]]:
    from sklearn.metrics import average_precision_score, balanced_accuracy_score, roc_auc_score

    test = _test_rows(model, preds)
    y, p = test["label"].to_numpy().astype(int), test["risk"].to_numpy()
    base = {"model": model, "task": "binary", "n_patients": len(test), "n_events": int(y.sum())}
    rows = []
    for name, fn in (("auc", roc_auc_score), ("average_precision", average_precision_score)):
        value = float(fn(y, p)) if len(np.unique(y)) == 2 else float("nan")
        lo, hi = bootstrap_ci(lambda i, fn=fn: fn(y[i], p[i]) if len(np.unique(y[i])) == 2
                              else float("nan"), len(y), n_boot, seed)
        rows.append({**base, "metric": name, "value": value, "ci_low": lo, "ci_high": hi})
    predicted = np.zeros(len(test), dtype=int)
    for fold, part in preds.groupby("fold"):
        train = part[part["role"] == "train"]
        cut = youden_threshold(train["label"].to_numpy().astype(int), train["risk"].to_numpy())
        in_fold = (test["fold"] == fold).to_numpy()
        predicted[in_fold] = (p[in_fold] >= cut).astype(int)
    lo, hi = bootstrap_ci(lambda i: balanced_accuracy_score(y[i], predicted[i]), len(y),
                          n_boot, seed)
    rows.append({**base, "metric": "balanced_accuracy",
                 "value": float(balanced_accuracy_score(y, predicted)), "ci_low": lo,
                 "ci_high": hi})
    return rows


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


def evaluate_cohort(predictions: dict[str, list[str]], out_metrics: str | Path,
                    out_cindex_png: str | Path, km_pngs: dict[str, str], n_boot: int = 1000,
                    seed: int = 0, task: Task | None = None) -> pd.DataFrame:
    """``predictions``: model -> its per-fold predictions.tsv files; ``km_pngs``: model ->
    output path of its Kaplan-Meier plot (ROC curve for a binary task)."""
    task = task or Task()
    rows: list[dict[str, object]] = []
    for model, files in predictions.items():
        preds = read_predictions(files)
        if task.type == "binary":
            rows += binary_metrics(model, preds, n_boot, seed)
            plot_roc(_test_rows(model, preds), f"{model}: out-of-fold {task.name}",
                     km_pngs[model])
            continue
        model_rows = survival_metrics(model, preds, n_boot, seed)
        groups = risk_groups(preds)
        p = plot_km(groups, f"{model}: out-of-fold risk groups", km_pngs[model])
        model_rows.append({**model_rows[0], "metric": "logrank_p", "value": p,
                           "ci_low": float("nan"), "ci_high": float("nan")})
        rows += model_rows
        log.info("%s: c-index %.3f [%.3f, %.3f], log-rank p %.3g", model,
                 model_rows[0]["value"], model_rows[0]["ci_low"], model_rows[0]["ci_high"], p)
    metrics = pd.DataFrame(rows, columns=COLUMNS)
    write_tsv(out_metrics, metrics)
    plot_cindex(metrics, out_cindex_png, "auc" if task.type == "binary" else "cindex")
    return metrics
