"""The whole chain through Snakemake on two tiny demo cohorts, and what re-runs after changes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time

import pandas as pd
import pytest

from conftest import REPO
from histodistill.models.catalog import CATALOG
from workflow_helpers import planned_jobs, shard_of, snakemake, tiny_config, tiny_demo

pytestmark = pytest.mark.slow

MODELS_WITH_WSI = tuple(m for m, info in CATALOG.items() if info.needs_wsi)
# the models with attention maps: histology-only, attention learnt (not wsi_meanpool's
# uniform weights), not a control
ATTENTION = tuple(m for m, info in CATALOG.items() if info.histology_only and not info.direct
                  and info.control is None)
# the final models every trained cohort bundles: histology-only, not a control
BUNDLED = tuple(m for m, info in CATALOG.items() if info.histology_only and info.control is None)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("wf")
    config = tiny_config(a=tiny_demo(4), b=tiny_demo(5))
    snakemake(workdir, config)
    return workdir, config


def test_reports_and_metrics_for_every_cohort(run):
    workdir, config = run
    for cohort in ("a", "b"):
        html = (workdir / "results" / cohort / "report.html").read_text()
        assert "RANDOMLY INITIALISED" in html and 'id="metrics"' in html
        metrics = pd.read_csv(workdir / "results" / cohort / "metrics.tsv", sep="\t")
        assert list(metrics.columns) == ["model", "task", "metric", "value", "ci_low",
                                         "ci_high", "n_patients", "n_events"]
        assert set(metrics["model"]) == set(CATALOG)  # every model (the default config)
        assert metrics["value"].notna().all()
        assert {"cindex_uno", "td_auc_6", "td_auc_12", "ibs", "cindex_uno_tau",
                "cindex_diff_vs_wsi_abmil", "cindex_diff_p_holm_vs_wsi_abmil"} <= set(
            metrics["metric"])
        student_kd = set(metrics.loc[metrics["model"] == "student_kd", "metric"])
        assert {f"cindex_diff_vs_{o}" for o in ("wsi_meanpool", "student_kd_permuted",
                                                "student_kd_self")} <= student_kd
        assert 'id="privileged"' in html and 'id="tuning"' in html
        assert 'id="comparison"' in html and 'id="ghanet"' in html and 'id="mope"' in html
        assert 'id="comparison"' in html and html.count('alt="attention ') == \
            2 * len(ATTENTION)  # the highest- and lowest-risk patient of each
        for model in ATTENTION:
            maps = workdir / "results" / cohort / "attention" / model
            assert len(list(maps.glob("*_attention.geojson"))) == 2
        logs = list((workdir / "results" / cohort / "logs").rglob("*.log"))
        assert len(logs) > 20


def test_snakemake_report_collects_attention_and_captions(run):
    """``snakemake --report`` registers the key outputs with their captions, attention maps
    of every histology-only model included."""
    import zipfile

    workdir, config = run
    snakemake(workdir, config, "--report", str(workdir / "smk_report.zip"))
    with zipfile.ZipFile(workdir / "smk_report.zip") as z:
        names = z.namelist()
    for model in ATTENTION:
        assert any(n.endswith("_overlay.jpg") and f"/{model}_" in n for n in names), model
    for name in ("metrics.tsv", "mope_pathways.png", "ghanet_groups.png", "report.html"):
        assert any(n.endswith(name) for n in names), name


def test_rerun_after_completion_does_nothing(run):
    workdir, config = run
    assert planned_jobs(workdir, config) == set()
    # the number of tile-reading processes changes no feature: only the reports, which
    # print the config, re-run
    readers = {**config, "features": {**config["features"], "num_workers": 3}}
    assert {rule for rule, _ in planned_jobs(workdir, readers)} == {"report", "all"}


def test_deleting_one_slides_features_reruns_only_its_shard_and_dependents(run):
    workdir, config = run
    feats = sorted((workdir / "results" / "a" / "features" / "resnet18_trunc").glob("*.h5"))
    victim = feats[6]
    backup = victim.with_suffix(".bak")
    shutil.copy2(victim, backup)
    victim.unlink()
    try:
        jobs = planned_jobs(workdir, config)
    finally:
        shutil.move(backup, victim)
    shard = shard_of(workdir / "results" / "a" / "demo" / "samples.tsv", victim.stem)
    expected = {("extract_features", (("cohort", "a"), ("shard", shard))),
                ("index_features", (("cohort", "a"), ("extractor", "resnet18_trunc"))),
                ("evaluate", (("cohort", "a"),)), ("report", (("cohort", "a"),)),
                ("all", ())}
    expected |= {("train", (("cohort", "a"), ("fold", str(k)), ("model", m)))
                 for m in MODELS_WITH_WSI for k in (0, 1)}
    expected |= {("attention", (("cohort", "a"), ("model", m))) for m in ATTENTION}
    expected |= {("bundle_model", (("cohort", "a"), ("model", m))) for m in BUNDLED}
    expected |= {("mope_summary", (("cohort", "a"),)), ("ghanet_summary", (("cohort", "a"),))}
    assert jobs == expected


def test_changing_one_cohorts_inputs_reruns_only_that_cohort(run):
    workdir, config = run
    """Edit one patient's follow-up in cohort b's clinical sheet (Snakemake compares checksums,
    so a mere touch is rightly not a change)."""
    clinical = workdir / "results" / "b" / "demo" / "clinical.tsv"
    original, stat = clinical.read_bytes(), clinical.stat()
    df = pd.read_csv(clinical, sep="\t")
    df.loc[0, "time"] += 1.0
    df.to_csv(clinical, sep="\t", index=False)
    future = time.time() + 60
    os.utime(clinical, (future, future))
    try:
        jobs = planned_jobs(workdir, config)
    finally:
        clinical.write_bytes(original)
        os.utime(clinical, (stat.st_atime, stat.st_mtime))
    cohorts = {dict(w).get("cohort") for rule, w in jobs if rule != "all"}
    assert cohorts == {"b"}
    rules = {rule for rule, _ in jobs}
    assert rules == {"normalise_rna", "score_pathways", "make_splits", "train", "evaluate",
                     "attention", "mope_summary", "ghanet_summary", "report", "bundle_model",
                     "all"}


def _by_cohort(jobs) -> dict[str | None, set[tuple[str, str | None]]]:
    """cohort -> {(rule, slide)} of planned jobs (cohort None: the rule all)."""
    out: dict[str | None, set[tuple[str, str | None]]] = {}
    for rule, wildcards in jobs:
        w = dict(wildcards)
        out.setdefault(w.get("cohort"), set()).add((rule, w.get("slide")))
    return out


COHORT_LEVEL = {"make_splits", "train", "evaluate", "attention", "mope_summary",
                "ghanet_summary", "report", "bundle_model"}


def test_adding_a_cohort_runs_only_that_cohort(run):
    workdir, config = run
    extra = {**config, "cohorts": {**config["cohorts"], "c": tiny_demo(6)}}
    jobs = _by_cohort(planned_jobs(workdir, extra))
    assert set(jobs) == {"c", None}
    assert {r for r, _ in jobs["c"]} == COHORT_LEVEL | {
        "make_demo_cohort", "make_demo_slide", "segment_and_tile", "extract_features",
        "index_features", "normalise_rna", "score_pathways"}


def test_changing_one_cohorts_rna_reruns_only_its_rna_and_models(run):
    workdir, config = run
    counts = workdir / "results" / "b" / "demo" / "rna_counts.tsv"
    original, stat = counts.read_bytes(), counts.stat()
    table = pd.read_csv(counts, sep="\t", index_col=0)
    table.iloc[0, 0] += 5
    table.to_csv(counts, sep="\t")
    try:
        planned = planned_jobs(workdir, config)
    finally:
        counts.write_bytes(original)
        os.utime(counts, (stat.st_atime, stat.st_mtime))
    jobs = _by_cohort(planned)
    assert set(jobs) == {"b", None}
    assert {r for r, _ in jobs["b"]} == {"normalise_rna", "score_pathways"} | COHORT_LEVEL - {
        "make_splits"}
    # a model that never sees RNA (wsi_abmil) does not read the pathway table: not re-trained
    retrained = {(dict(w)["model"], dict(w)["fold"]) for r, w in planned if r == "train"}
    folds = range(config["splits"]["n_folds"])
    assert retrained == {(m, str(k)) for m, info in CATALOG.items() if info.uses_rna
                         for k in folds}


@pytest.mark.parametrize(("section", "change", "first"), [
    ("wsi", {"tiling": {"patch_um": 96.0, "patch_px": 96}}, "segment_and_tile"),
    ("features", {"extractor": "resnet50_trunc"}, "extract_features"),
])
def test_tiling_or_extractor_change_reruns_only_what_depends_on_it(run, section, change,
                                                                    first):
    workdir, config = run
    changed = {**config, section: {**config.get(section, {}), **change}}
    jobs = planned_jobs(workdir, changed)
    rules = {r for r, _ in jobs}
    assert first in rules and not rules & {"make_demo_cohort", "make_demo_slide",
                                           "normalise_rna",
                                           "score_pathways", "make_splits"}
    assert {dict(w)["model"] for r, w in jobs if r == "train"} == set(MODELS_WITH_WSI)
    assert {dict(w)["cohort"] for r, w in jobs if r != "all"} == {"a", "b"}


@pytest.mark.parametrize(("module", "rules"), [
    ("report/tables.py", {"report"}),  # only the report runs it
    # evaluation, the attention maps, the MoPE summary and the bundles (their CV metrics) run
    # it; the report reads them
    ("evaluation/km.py", {"evaluate", "attention", "mope_summary", "bundle_model", "report"}),
])
def test_a_code_edit_reruns_the_steps_that_run_it(run, tmp_path, module, rules):
    """An edit to one package module, in a copy of the workflow (mtimes kept, so only the
    edit differs), re-runs the steps whose scripts import it, and their dependents."""
    workdir, config = run
    copy = tmp_path / "workflow_copy"
    copy.mkdir()
    shutil.copy2(REPO / "Snakefile", copy / "Snakefile")
    for folder in ("workflow", "config", "envs"):
        shutil.copytree(REPO / folder, copy / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    assert planned_jobs(workdir, config, copy / "Snakefile") == set()
    source = copy / "workflow" / "histodistill" / module
    source.write_text(source.read_text() + "\n_EDITED = True\n")
    jobs = _by_cohort(planned_jobs(workdir, config, copy / "Snakefile"))
    assert set(jobs) == {"a", "b", None}
    assert {r for r, _ in jobs["a"]} == {r for r, _ in jobs["b"]} == rules


def test_lint_passes():
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_bad_slide_stops_only_itself_then_is_excluded_and_reported(run, tmp_path):
    """stop + --keep-going: every other slide is still processed; switching to exclude re-runs
    only the bad slide's jobs (plus cohort-level steps) and the report names it."""
    workdir, _ = run
    demo = workdir / "results" / "a" / "demo"
    for name in ("samples.tsv", "clinical.tsv", "rna_counts.tsv"):
        shutil.copy2(demo / name, tmp_path / name)
    shutil.copytree(demo / "slides", tmp_path / "slides")
    samples = pd.read_csv(tmp_path / "samples.tsv", sep="\t")
    samples["path"] = [str(tmp_path / "slides" / f"{s}.tiff") for s in samples["slide"]]
    samples.to_csv(tmp_path / "samples.tsv", sep="\t", index=False)
    bad = samples["slide"].iloc[0]
    (tmp_path / "slides" / f"{bad}.tiff").write_bytes(b"II*\x00" + b"\x00" * 64)
    cohort = {"samples": str(tmp_path / "samples.tsv"), "clinical": str(tmp_path / "clinical.tsv"),
              "rna": {"path": str(tmp_path / "rna_counts.tsv")}}
    config = tiny_config(real=cohort)
    proc = snakemake(tmp_path, config, "--keep-going", check=False)
    assert proc.returncode != 0
    log = (tmp_path / "results" / "real" / "logs" / "segment_and_tile" / f"{bad}.log"
           ).read_text()
    assert f"slide '{bad}'" in log and "no image directory" in log
    # every other slide is encoded, but for the other slides of the bad one's feature shard
    # (rows 0-4 of the sheet), which wait for the decision
    feats = tmp_path / "results" / "real" / "features" / "resnet18_trunc"
    assert sorted(p.stem for p in feats.glob("*.h5")) == sorted(samples["slide"].iloc[5:])

    config["wsi"] = {"on_slide_error": "exclude"}
    jobs = planned_jobs(tmp_path, config)
    assert _slide_jobs(jobs) == {("segment_and_tile", bad), ("extract_features", "0")}
    proc = snakemake(tmp_path, config)
    # the terminal says which slides were left out, and why, at the end of a run that exits 0
    assert "histodistill: 1 slides FAILED and were excluded" in proc.stderr
    assert f"real/{bad}: " in proc.stderr and "no image directory" in proc.stderr
    shard_log = feats.parent.parent / "logs" / "extract_features" / "resnet18_trunc"
    assert f"slide '{bad}'" in (shard_log / "shard0.log").read_text()
    html = (tmp_path / "results" / "real" / "report.html").read_text()
    assert "FAILED and were excluded" in html
    assert "failed: a TIFF header with no image directory" in html
    n_good = len(samples) - 1  # the banner counts only the slides actually encoded
    assert f"features of {n_good} of {n_good} encoded slides were computed with" in html
    meta = (tmp_path / "results" / "real" / "models" / "wsi_abmil" / "fold0" / "meta.json")
    assert bad in meta.read_text()

    # a new (second) slide of an existing patient: only its own slide jobs, then the cohort
    good = samples["slide"].iloc[1]
    shutil.copy2(tmp_path / "slides" / f"{good}.tiff", tmp_path / "slides" / "new-slide.tiff")
    added = pd.concat([samples, samples.iloc[[1]].assign(
        slide="new-slide", path=str(tmp_path / "slides" / "new-slide.tiff"))])
    added.to_csv(tmp_path / "samples.tsv", sep="\t", index=False)
    planned = planned_jobs(tmp_path, config)
    # its own segmentation, and the last feature shard (rows 10-12), which it joins
    assert _slide_jobs(planned) == {("segment_and_tile", "new-slide"), ("extract_features", "2")}
    # the sheet defines the folds (patients with a slide): every model of the cohort re-trains
    assert {r for r, w in planned if not _slide_jobs({(r, w)})} == COHORT_LEVEL | {
        "index_features", "all"}


def _slide_jobs(jobs):
    """(rule, slide) of per-slide jobs and (extract_features, shard index) of feature shards."""
    return {(r, dict(w).get("slide", dict(w).get("shard"))) for r, w in jobs
            if {"slide", "shard"} & set(dict(w))}
