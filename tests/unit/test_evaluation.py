"""Evaluation: c-index identical to scikit-survival and to MCAT's published numbers."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from conftest import SHARED
from histodistill.evaluation.evaluate import COLUMNS, evaluate_cohort
from histodistill.evaluation.km import risk_groups
from histodistill.evaluation.metrics import bootstrap_ci, harrell_cindex


def brute_force_cindex(time, event, risk, tol=1e-8):
    """Harrell: (i, j) is comparable when i has an event and j outlived it, or j was censored
    at i's event time; risks within ``tol`` count one half."""
    concordant = comparable = 0.0
    for i, j in itertools.permutations(range(len(time)), 2):
        if event[i] and (time[i] < time[j] or (time[i] == time[j] and not event[j])):
            comparable += 1
            tie = abs(risk[i] - risk[j]) <= tol
            concordant += 0.5 if tie else 1.0 if risk[i] > risk[j] else 0.0
    return concordant / comparable


def test_cindex_equals_brute_force_with_ties():
    rng = np.random.default_rng(0)
    time = rng.integers(1, 20, 60).astype(float)
    event = rng.integers(0, 2, 60)
    risk = np.round(rng.normal(size=60), 1)  # ties in risk
    assert harrell_cindex(time, event, risk) == pytest.approx(
        brute_force_cindex(time, event, risk), abs=1e-12)


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    rng = np.random.default_rng(1)
    time, event = rng.exponential(10, 200), rng.integers(0, 2, 200)
    risk = -time + rng.normal(0, 5, 200)

    def stat(i):
        return harrell_cindex(time[i], event[i], risk[i])

    a, b = bootstrap_ci(stat, 200, 300, seed=4), bootstrap_ci(stat, 200, 300, seed=4)
    assert a == b and a[0] < harrell_cindex(time, event, risk) < a[1]


def test_risk_groups_use_the_training_median():
    preds = pd.DataFrame({
        "fold": [0] * 6, "role": ["train"] * 4 + ["test"] * 2,
        "risk": [1.0, 2.0, 3.0, 4.0, 2.4, 2.6], "time": 1.0, "event": 1,
        "patient": list("abcdef")})
    groups = risk_groups(preds)
    assert groups["patient"].tolist() == ["e", "f"]
    assert groups["high_risk"].tolist() == [False, True]  # threshold 2.5, not the test median


def test_evaluate_cohort_writes_metrics_and_plots(tmp_path):
    rng = np.random.default_rng(2)
    files = []
    for k in range(3):
        n = 30
        df = pd.DataFrame({"fold": k, "model": "m", "patient": [f"p{k}_{i}" for i in range(n)],
                           "time": rng.exponential(20, n), "event": rng.integers(0, 2, n),
                           "risk": rng.normal(size=n),
                           "role": ["train"] * 20 + ["test"] * 10})
        df.to_csv(tmp_path / f"f{k}.tsv", sep="\t", index=False)
        files.append(str(tmp_path / f"f{k}.tsv"))
    metrics = evaluate_cohort({"m": files}, tmp_path / "metrics.tsv", tmp_path / "c.png",
                              {"m": str(tmp_path / "km.png")}, n_boot=50, seed=0)
    written = pd.read_csv(tmp_path / "metrics.tsv", sep="\t")
    assert list(written.columns) == COLUMNS
    assert set(written["metric"]) == {"cindex", "cindex_fold_mean", "cindex_fold_sd",
                                      "logrank_p"}
    assert (written["n_patients"] == 30).all()
    assert metrics.loc[metrics["metric"] == "cindex", "value"].between(0, 1).all()
    assert (tmp_path / "km.png").stat().st_size > 1000


MCAT = SHARED / "reference_results" / "mcat_iccv2021"


@pytest.mark.realdata
def test_cindex_reproduces_mcat_published_per_fold_values():
    """275 model x cohort x fold runs of MCAT (ICCV 2021): our c-index on their per-patient
    risks equals their committed val_cindex."""
    if not MCAT.exists():
        pytest.skip(f"{MCAT} absent (shared data sits beside the checkout in CI)")
    checked = 0
    for pred_file in sorted((MCAT / "val_predictions").glob("*/*_val_predictions.csv")):
        run, cohort = pred_file.parent.name, pred_file.name.removesuffix("_val_predictions.csv")
        summary = pd.read_csv(MCAT / "per_fold" / run / f"{cohort}_summary_latest.csv")
        preds = pd.read_csv(pred_file)
        for fold, df in preds.groupby("fold"):
            ours = harrell_cindex(df["survival_months"], 1 - df["censorship"], df["risk"])
            theirs = summary.loc[summary["folds"] == fold, "val_cindex"].item()
            assert ours == pytest.approx(theirs, abs=1e-12), (run, cohort, fold)
            checked += 1
    assert checked == 275


def test_binary_metrics_threshold_comes_from_training_rows(tmp_path):
    from sklearn.metrics import average_precision_score, roc_auc_score

    from histodistill.evaluation.evaluate import youden_threshold
    from histodistill.training.task import Task

    rng = np.random.default_rng(3)
    rows = []
    for fold in range(2):
        for role, n in (("train", 40), ("test", 30)):
            y = rng.integers(0, 2, n)
            p = np.clip(0.3 + 0.4 * y + rng.normal(0, 0.2, n), 0, 1)
            rows.append(pd.DataFrame({"fold": fold, "model": "m", "role": role, "label": y,
                                      "risk": p, "time": 1.0, "event": 0,
                                      "patient": [f"{role}{fold}-{i}" for i in range(n)]}))
    preds = pd.concat(rows)
    files = []
    for fold, part in preds.groupby("fold"):
        files.append(tmp_path / f"f{fold}.tsv")
        part.to_csv(files[-1], sep="\t", index=False)
    metrics = evaluate_cohort({"m": files}, tmp_path / "m.tsv", tmp_path / "auc.png",
                              {"m": tmp_path / "roc_m.png"}, n_boot=100, seed=0,
                              task=Task("binary", "node")).set_index("metric")
    test = preds[preds["role"] == "test"]
    assert metrics.loc["auc", "value"] == pytest.approx(roc_auc_score(test["label"], test["risk"]))
    assert metrics.loc["average_precision", "value"] == pytest.approx(
        average_precision_score(test["label"], test["risk"]))
    assert metrics.loc["auc", "ci_low"] < metrics.loc["auc", "value"] < metrics.loc["auc",
                                                                                    "ci_high"]
    from sklearn.metrics import balanced_accuracy_score

    called = []
    for fold in range(2):
        train = preds[(preds["fold"] == fold) & (preds["role"] == "train")]
        cut = youden_threshold(train["label"].to_numpy(), train["risk"].to_numpy())
        called.append(test[test["fold"] == fold]["risk"] >= cut)
    expected = balanced_accuracy_score(test["label"], pd.concat(called).astype(int))
    assert metrics.loc["balanced_accuracy", "value"] == pytest.approx(expected)
    assert expected > 0.6
    assert metrics.loc["auc", "n_events"] == int(test["label"].sum())
    assert (tmp_path / "roc_m.png").stat().st_size > 0
