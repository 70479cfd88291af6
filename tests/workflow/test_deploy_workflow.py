"""Train -> bundle -> score through Snakemake: a trained cohort, a scored demo cohort with
outcomes, a slide-only hospital cohort (no RNA, no clinical sheet), and what re-runs."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from conftest import HALLMARK
from workflow_helpers import planned_jobs, snakemake, tiny_config, tiny_demo

pytestmark = pytest.mark.slow

MODELS = ["wsi_meanpool", "wsi_abmil", "student_kd", "student_kd_permuted"]
BUNDLED = ["wsi_meanpool", "wsi_abmil", "student_kd"]  # histology-only, not a control
SCORING = {"make_demo_cohort", "make_demo_slide", "segment_and_tile", "extract_features",
           "index_features", "score_cohort", "validate_external", "external_report"}


def _hospital(root, seed: int = 11):
    """A slide-only cohort: generated slides and a sample sheet; its RNA and clinical sheet
    deleted, so nothing could read them."""
    from histodistill.demo.cohort import make_demo_cohort
    from histodistill.demo.spec import DemoSpec

    folder = root / "hospital"
    make_demo_cohort(folder, DemoSpec(n_patients=6, seed=seed, slide_width_um=768.0,
                                      slide_height_um=576.0, n_genes=1200), HALLMARK)
    for name in ("rna_counts.tsv", "clinical.tsv", "ground_truth.tsv", "ground_truth.json"):
        (folder / name).unlink()
    return folder


def _config(hospital, **extra):
    config = tiny_config(
        a=tiny_demo(4),
        x={**tiny_demo(9), "score_with": {"cohort": "a"}},
        y={"samples": str(hospital / "samples.tsv"),
           "score_with": {"cohort": "a", "models": ["wsi_abmil", "student_kd_permuted"]}},
        **extra)
    return {**config, "models": MODELS}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("deploy")
    hospital = _hospital(workdir)
    config = _config(hospital)
    snakemake(workdir, config)
    return workdir, config, hospital


def test_trained_cohort_bundles_and_scored_cohorts_report(run):
    workdir, _, _ = run
    res = workdir / "results"
    for m in BUNDLED:
        manifest = json.loads((res / "a" / "final" / m / "manifest.json").read_text())
        assert manifest["model"] == m and manifest["training"]["cohort"] == "a"
        assert (res / "a" / "final" / m / "weights.safetensors").stat().st_size > 0
    # a control is bundled only on request (cohort y asks for it); no other is
    assert sorted(d.name for d in (res / "a" / "final").iterdir()) == sorted(
        [*BUNDLED, "student_kd_permuted"])
    assert "Final models (results/{cohort}/final/{model}/" in (res / "a" / "report.html"
                                                              ).read_text()
    metrics = pd.read_csv(res / "x" / "external" / "metrics.tsv", sep="\t")
    assert set(metrics["model"]) == set(BUNDLED)
    cindex = metrics[metrics["metric"] == "cindex"].set_index("model")
    assert cindex["value"].between(0, 1).all() and (cindex["n_patients"] == 12).all()
    assert "cindex_diff_vs_wsi_abmil" in set(metrics.loc[metrics["model"] == "student_kd",
                                                         "metric"])
    html = (res / "x" / "report.html").read_text()
    assert 'id="external"' in html and 'id="side-by-side"' in html and "RANDOMLY" in html
    assert html.count('alt="attention ') == 2 * 2  # wsi_abmil and student_kd, 1 per group
    # the slide-only cohort: scored, not validated; by the models it asked for
    assert sorted(p.stem for p in (res / "y" / "predictions").glob("*.tsv")) == [
        "student_kd_permuted", "wsi_abmil"]
    preds = pd.read_csv(res / "y" / "predictions" / "wsi_abmil.tsv", sep="\t")
    assert len(preds) == 6 and (preds["status"] == "scored").all()
    assert set(preds["risk_group"]) <= {"high", "low"}
    assert 'id="no-outcomes"' in (res / "y" / "report.html").read_text()
    for cohort in ("x", "y"):  # no RNA step ran for a scored cohort
        assert not (res / cohort / "rna").exists() and not (res / cohort / "models").exists()


def test_rerun_after_completion_does_nothing(run):
    workdir, config, _ = run
    assert planned_jobs(workdir, config) == set()


def test_adding_a_scored_cohort_runs_only_its_slides_and_scoring(run):
    workdir, config, _ = run
    extra = {**config, "cohorts": {**config["cohorts"],
                                   "z": {**tiny_demo(12), "score_with": {"cohort": "a"}}}}
    jobs = planned_jobs(workdir, extra)
    assert {dict(w).get("cohort") for r, w in jobs if r != "all"} == {"z"}
    assert {r for r, _ in jobs} == SCORING | {"all"}


def test_adding_slides_to_a_scored_cohort_scores_only_that_cohort_again(run):
    workdir, config, hospital = run
    sheet = hospital / "samples.tsv"
    original = sheet.read_bytes()
    rows = pd.read_csv(sheet, sep="\t")
    first = rows.iloc[0]
    new_slide = hospital / "slides" / "new-s1.tiff"
    shutil.copy(hospital / first["path"], new_slide)
    pd.concat([rows, pd.DataFrame([{"patient": "new-patient", "slide": "new-s1",
                                    "path": "slides/new-s1.tiff"}])]).to_csv(
        sheet, sep="\t", index=False)
    try:
        jobs = planned_jobs(workdir, config)
    finally:
        sheet.write_bytes(original)
        new_slide.unlink()
    assert {dict(w).get("cohort") for r, w in jobs if r != "all"} == {"y"}
    per_slide = {dict(w).get("slide") for r, w in jobs if r == "segment_and_tile"}
    assert per_slide == {"new-s1"}
    assert {r for r, _ in jobs} == {"segment_and_tile", "extract_features", "index_features",
                                    "score_cohort", "external_report", "all"}


def test_retraining_the_source_cohort_rescores_the_cohorts_it_scores(run):
    workdir, config, _ = run
    retrained = {**config, "train": {**config["train"], "epochs": 3}}
    jobs = planned_jobs(workdir, retrained)
    by_cohort: dict[str, set[str]] = {}
    for rule, w in jobs:
        by_cohort.setdefault(dict(w).get("cohort"), set()).add(rule)
    assert {"train", "bundle_model", "evaluate", "report"} <= by_cohort["a"]
    assert by_cohort["x"] == {"score_cohort", "validate_external", "external_report"}
    assert by_cohort["y"] == {"score_cohort", "external_report"}


def test_a_bundle_copied_to_another_place_scores_by_path(run, tmp_path):
    """The bundle leaves the project: copied elsewhere, it scores the hospital cohort from a
    new working directory with the same risks as in the project that trained it."""
    workdir, config, hospital = run
    bundle = tmp_path / "shipped" / "abmil"
    shutil.copytree(workdir / "results" / "a" / "final" / "wsi_abmil", bundle)
    other = tmp_path / "other_project"
    other.mkdir()
    cfg = {**config, "cohorts": {"w": {"samples": str(hospital / "samples.tsv"),
                                       "score_with": {"bundles": {"abmil": str(bundle)}}}}}
    snakemake(other, cfg)
    theirs = pd.read_csv(other / "results" / "w" / "predictions" / "abmil.tsv", sep="\t")
    ours = pd.read_csv(workdir / "results" / "y" / "predictions" / "wsi_abmil.tsv", sep="\t")
    pd.testing.assert_series_equal(theirs["risk"], ours["risk"], rtol=1e-6)
    # a bundle of another extractor is refused before any job runs, naming it
    manifest = json.loads((bundle / "manifest.json").read_text())
    manifest["extractor"]["name"] = "uni"
    (bundle / "manifest.json").write_text(json.dumps(manifest))
    proc = snakemake(tmp_path, cfg, "--dry-run", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and str(bundle) in out and "trained on uni features" in out
