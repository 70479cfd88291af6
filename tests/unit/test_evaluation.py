"""Evaluation: c-index identical to scikit-survival and to MCAT's published numbers; Uno's
c-index, time-dependent AUC and the integrated Brier score against textbook formulas written
out here; paired comparisons."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from conftest import SHARED
from histodistill.evaluation.compare import compare, comparison_pairs, holm
from histodistill.evaluation.curves import survival_on_grid
from histodistill.evaluation.evaluate import (
    COLUMNS,
    EvalParams,
    evaluate,
    survival_metrics,
)
from histodistill.evaluation.km import risk_groups
from histodistill.evaluation.metrics import (
    bootstrap_ci,
    harrell_cindex,
    integrated_brier,
    paired_bootstrap,
    td_auc,
    uno_cindex,
)
from histodistill.training.task import Task


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


@pytest.mark.parametrize("seed", range(5))
def test_cindex_is_identical_to_scikit_survival(seed):
    from sksurv.metrics import concordance_index_censored

    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 3000))
    time = np.round(rng.exponential(20, n), int(rng.integers(0, 3)))  # tied times too
    event = rng.integers(0, 2, n).astype(bool)
    risk = np.round(rng.normal(size=n), int(rng.integers(1, 4)))  # tied risks too
    ours = harrell_cindex(time, event, risk)
    assert ours == concordance_index_censored(event, time, risk)[0]  # to the last bit


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


def _write_fold_files(tmp_path, rng, n_folds=3, n=30, cuts=(10.0, 25.0)):
    """Per-fold predictions.tsv with survival curves, and a meta.json beside each."""
    files = []
    for k in range(n_folds):
        d = tmp_path / f"fold{k}"
        d.mkdir()
        hazards = rng.uniform(0.1, 0.6, (n, len(cuts) + 1))
        surv = np.cumprod(1 - hazards, axis=1)
        df = pd.DataFrame({"fold": k, "model": "m", "patient": [f"p{k}_{i}" for i in range(n)],
                           "time": rng.exponential(20, n), "event": rng.integers(0, 2, n),
                           "risk": -surv.sum(axis=1),
                           **{f"surv_{j}": surv[:, j] for j in range(surv.shape[1])},
                           "role": ["train"] * 20 + ["test"] * (n - 20)})
        df.to_csv(d / "predictions.tsv", sep="\t", index=False)
        (d / "meta.json").write_text(f'{{"fold": {k}, "bin_cuts": {list(cuts)}}}')
        files.append(str(d / "predictions.tsv"))
    return files


def test_evaluate_cohort_writes_metrics_and_plots(tmp_path):
    files = _write_fold_files(tmp_path, np.random.default_rng(2))
    metrics = evaluate({"m": files}, tmp_path / "metrics.tsv", tmp_path / "c.png",
                       {"m": str(tmp_path / "km.png")},
                       EvalParams(n_bootstrap=50, horizons=(10.0, 1e6)))
    written = pd.read_csv(tmp_path / "metrics.tsv", sep="\t")
    assert list(written.columns) == COLUMNS
    assert set(written["metric"]) == {"cindex", "cindex_uno", "cindex_uno_tau", "td_auc_10",
                                      "td_auc_1e+06", "ibs", "cindex_fold_mean",
                                      "cindex_fold_sd", "logrank_p"}
    assert (written["n_patients"] == 30).all()
    by = metrics.set_index("metric")
    assert by.loc["cindex", "value"] == pytest.approx(
        harrell_cindex(*(pd.concat([pd.read_csv(f, sep="\t") for f in files])
                         .query("role == 'test'")[["time", "event", "risk"]].to_numpy().T)))
    for m in ("cindex", "cindex_uno", "td_auc_10", "ibs"):
        assert by.loc[m, "ci_low"] <= by.loc[m, "value"] <= by.loc[m, "ci_high"], m
    assert np.isnan(by.loc["td_auc_1e+06", "value"])  # beyond the follow-up: NaN, not a crash
    test_time = pd.concat([pd.read_csv(f, sep="\t") for f in files]).query("role == 'test'")
    assert by.loc["cindex_uno_tau", "value"] == pytest.approx(np.quantile(test_time["time"], 0.8))
    assert 0 < by.loc["ibs", "value"] < 0.5
    assert (tmp_path / "km.png").stat().st_size > 1000
    twice = evaluate({"m": files, "m2": files}, tmp_path / "m2.tsv", tmp_path / "c2.png",
                     {"m": str(tmp_path / "km1.png"), "m2": str(tmp_path / "km2.png")},
                     EvalParams(n_bootstrap=50, horizons=(10.0, 1e6)), threads=2)
    pd.testing.assert_frame_equal(  # processes change nothing
        twice[twice["model"] == "m"].reset_index(drop=True), metrics)


def _censoring_km(time, event):
    """G(t) = P(C > t): Kaplan-Meier with censoring as the event (continuous times, no ties)."""
    order = np.argsort(time)
    t_sorted, c_sorted = time[order], 1 - event[order]
    at_risk = len(time) - np.arange(len(time))
    factors = np.where(c_sorted == 1, 1 - 1 / at_risk, 1.0)
    return lambda t: float(np.prod(factors[t_sorted <= t]))


def _censored_data(seed, n=80):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    t_event = rng.exponential(10 * np.exp(-0.8 * x))
    t_cens = rng.exponential(15, n)
    time = np.minimum(t_event, t_cens)
    return time, (t_event <= t_cens).astype(int), x + rng.normal(0, 0.5, n)


def test_uno_cindex_equals_the_ipcw_formula():
    time, event, risk = _censored_data(5)
    g = _censoring_km(time, event)
    for tau in (None, float(np.quantile(time, 0.7))):
        num = den = 0.0
        for i in range(len(time)):
            if not event[i] or (tau is not None and time[i] >= tau):
                continue
            w = 1 / g(time[i] - 1e-12) ** 2
            later = time > time[i]
            den += w * later.sum()
            num += w * ((risk[i] > risk[later]).sum() + 0.5 * (risk[i] == risk[later]).sum())
        assert uno_cindex(time, event, risk, tau) == pytest.approx(num / den, abs=1e-10)


def test_td_auc_equals_the_cumulative_dynamic_formula():
    time, event, risk = _censored_data(6)
    g = _censoring_km(time, event)
    h = float(np.median(time))
    cases = np.flatnonzero((time <= h) & (event == 1))
    controls = time > h
    w = np.array([1 / g(time[i] - 1e-12) for i in cases])
    wins = np.array([(risk[i] > risk[controls]).sum() + 0.5 * (risk[i] == risk[controls]).sum()
                     for i in cases])
    expected = (w * wins).sum() / (w.sum() * controls.sum())
    assert td_auc(time, event, risk, h) == pytest.approx(expected, abs=1e-10)


def test_integrated_brier_equals_graf_formula():
    time, event, risk = _censored_data(7)
    g = _censoring_km(time, event)
    grid = np.linspace(*np.quantile(time, [0.1, 0.9]), 20)
    surv = np.exp(-np.outer(np.exp(risk - 2), grid))  # any survival function will do
    scores = []
    for j, t in enumerate(grid):
        died = (time <= t) & (event == 1)
        alive = time > t
        terms = np.where(died, surv[:, j] ** 2 / np.array([g(x - 1e-12) for x in time]), 0.0)
        terms += np.where(alive, (1 - surv[:, j]) ** 2 / g(t), 0.0)
        scores.append(terms.mean())
    expected = np.trapezoid(scores, grid) / (grid[-1] - grid[0])
    assert integrated_brier(time, event, surv, grid) == pytest.approx(expected, abs=1e-10)


def test_survival_curves_follow_the_fold_intervals():
    preds = pd.DataFrame({
        "fold": [0, 0, 1, 1], "patient": list("abcd"), "role": ["train", "test"] * 2,
        "time": [40.0, 5.0, 30.0, 5.0], "event": 1, "risk": 0.0,
        "surv_0": [0.9, 0.8, 0.5, 0.6], "surv_1": [0.5, 0.4, 0.2, 0.3]})
    grid = np.array([0.0, 5.0, 10.0, 25.0, 40.0, 100.0])
    test, surv = survival_on_grid(preds, {0: [10.0], 1: [20.0]}, grid)
    assert test["patient"].tolist() == ["b", "d"]
    # fold 0: knots (0, 1), (10, 0.8), (40 = longest training time, 0.4); flat after
    np.testing.assert_allclose(surv[0], [1.0, 0.9, 0.8, 0.8 - 0.4 * 15 / 30, 0.4, 0.4])
    # fold 1: knots (0, 1), (20, 0.6), (30, 0.3)
    np.testing.assert_allclose(surv[1], [1.0, 0.9, 0.8, 0.45, 0.3, 0.3])


def test_paired_bootstrap_finds_a_real_difference_and_not_a_fake_one():
    time, event, risk = _censored_data(8, n=200)
    noise = np.random.default_rng(0).normal(0, 3, 200)

    def good(i):
        return harrell_cindex(time[i], event[i], risk[i])

    def bad(i):
        return harrell_cindex(time[i], event[i], noise[i])

    lo, hi, p = paired_bootstrap(good, bad, 200, 300, seed=1)
    assert lo > 0 and p < 0.01
    lo, hi, p = paired_bootstrap(good, good, 200, 300, seed=1)
    assert lo == hi == 0 and p == 1.0


def test_paired_bootstrap_p_is_floored_at_one_over_the_resamples():
    time, event, risk = _censored_data(8, n=300)
    flipped = -risk  # every resample prefers ``risk``: the raw share on the other side is 0

    def good(i):
        return harrell_cindex(time[i], event[i], risk[i])

    def bad(i):
        return harrell_cindex(time[i], event[i], flipped[i])

    assert paired_bootstrap(good, bad, 300, 250, seed=1)[2] == pytest.approx(1 / 250)


def test_holm_adjusts_step_down_and_keeps_nan():
    got = holm(np.array([0.01, 0.04, np.nan, 0.03, 0.5]))
    # sorted 0.01, 0.03, 0.04, 0.5 (m = 4): 0.04, 0.09, max(0.09, 0.08), max(., 0.5)
    np.testing.assert_allclose(got, [0.04, 0.09, np.nan, 0.09, 0.5])
    assert holm(np.array([0.6, 0.6]))[0] == 1.0  # capped at 1


def test_students_are_compared_with_the_baselines_and_their_controls():
    models = ["rna_snn", "wsi_meanpool", "wsi_abmil", "teacher_fusion", "student_kd",
              "teacher_fusion_permuted", "student_kd_permuted", "student_kd_self", "ghanet"]
    pairs = comparison_pairs(models, "wsi_abmil")
    assert [p for p in pairs if p[1] == "wsi_abmil"] == [(m, "wsi_abmil") for m in models
                                                         if m != "wsi_abmil"]
    extra = [p for p in pairs if p[1] != "wsi_abmil"]
    assert extra == [("student_kd", "wsi_meanpool"), ("student_kd", "student_kd_permuted"),
                     ("student_kd", "student_kd_self"), ("ghanet", "wsi_meanpool")]
    # controls, teachers and RNA models are not students; no reference, no reference pairs
    assert comparison_pairs(["wsi_meanpool", "bidistill"], "wsi_abmil") == \
        [("bidistill", "wsi_meanpool")]


def test_comparisons_carry_holm_adjusted_p_over_all_of_them():
    time, event, risk = _censored_data(9, n=80)
    frame = pd.DataFrame({"patient": [f"p{i}" for i in range(80)], "time": time,
                          "event": event, "fold": 0})
    noise = np.random.default_rng(3).normal(size=80)
    tests = {"wsi_abmil": frame.assign(risk=noise), "wsi_meanpool": frame.assign(risk=-noise),
             "bidistill": frame.assign(risk=risk)}
    rows = {(r["model"], r["metric"]): r["value"]
            for r in compare(tests, Task(), EvalParams(n_bootstrap=100))}
    raw = {k: v for k, v in rows.items() if "_diff_p_vs_" in k[1]}
    assert len(raw) == 3  # meanpool and bidistill vs wsi_abmil, bidistill vs wsi_meanpool
    np.testing.assert_allclose([rows[(m, k.replace("_p_vs_", "_p_holm_vs_"))]
                                for m, k in raw], holm(np.array(list(raw.values()))))


def test_uno_tau_auto_is_the_80th_percentile_of_follow_up():
    time = np.arange(1.0, 101.0)
    assert EvalParams().with_uno_tau(time).uno_tau == pytest.approx(np.quantile(time, 0.8))
    assert EvalParams(uno_tau=24.0).with_uno_tau(time).uno_tau == 24.0
    assert EvalParams(uno_tau=None).with_uno_tau(time).uno_tau is None


def test_comparison_uses_the_patients_both_models_predicted():
    time, event, risk = _censored_data(9, n=60)
    ref = pd.DataFrame({"patient": [f"p{i}" for i in range(60)], "time": time, "event": event,
                        "risk": risk, "fold": 0})
    other = ref.iloc[:50].assign(risk=-risk[:50])
    rows = compare({"wsi_abmil": ref, "x": other}, Task(), EvalParams(n_bootstrap=100))
    diff = {r["metric"]: r for r in rows}
    expected = harrell_cindex(time[:50], event[:50], -risk[:50]) - \
        harrell_cindex(time[:50], event[:50], risk[:50])
    assert diff["cindex_diff_vs_wsi_abmil"]["value"] == pytest.approx(expected)
    assert diff["cindex_diff_vs_wsi_abmil"]["n_patients"] == 50
    assert diff["cindex_diff_p_vs_wsi_abmil"]["value"] < 0.05


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
        # the same numbers through our evaluation code: MCAT's 5-fold mean
        test = preds.rename(columns={"case_id": "patient", "survival_months": "time"}).assign(
            event=1 - preds["censorship"], role="test")
        rows = {r["metric"]: r["value"] for r in survival_metrics(
            run, test, EvalParams(n_bootstrap=0, horizons=()))}
        published = pd.read_csv(MCAT / f"{run}.cindex.csv").set_index("Project")
        assert rows["cindex_fold_mean"] == pytest.approx(
            published.loc[cohort.removeprefix("tcga_"), "Val C-Index (Mean)"], abs=1e-12)
    assert checked == 275


def test_binary_metrics_threshold_comes_from_training_rows(tmp_path):
    from sklearn.metrics import average_precision_score, roc_auc_score

    from histodistill.evaluation.evaluate import youden_threshold

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
    metrics = evaluate({"m": files}, tmp_path / "m.tsv", tmp_path / "auc.png",
                       {"m": tmp_path / "roc_m.png"}, EvalParams(n_bootstrap=100),
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


def test_binary_comparison_is_paired_on_auc():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(11)
    y = rng.integers(0, 2, 120)
    good = np.clip(0.3 + 0.4 * y + rng.normal(0, 0.2, 120), 0, 1)
    noise = rng.uniform(size=120)
    frame = pd.DataFrame({"patient": [f"p{i}" for i in range(120)], "label": y, "fold": 0})
    rows = compare({"wsi_abmil": frame.assign(risk=noise), "x": frame.assign(risk=good)},
                   Task("binary", "node"), EvalParams(n_bootstrap=200))
    diff = {r["metric"]: r for r in rows}
    assert diff["auc_diff_vs_wsi_abmil"]["value"] == pytest.approx(
        roc_auc_score(y, good) - roc_auc_score(y, noise))
    assert diff["auc_diff_vs_wsi_abmil"]["ci_low"] > 0
    assert diff["auc_diff_p_vs_wsi_abmil"]["value"] < 0.01
    assert diff["auc_diff_vs_wsi_abmil"]["n_events"] == int(y.sum())
