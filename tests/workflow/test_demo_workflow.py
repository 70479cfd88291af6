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
from workflow_helpers import planned_jobs, snakemake, tiny_config, tiny_demo

pytestmark = pytest.mark.slow

MODELS_WITH_WSI = ("wsi_abmil", "teacher_fusion", "student_kd")


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
        assert set(metrics["model"]) == {"rna_snn", "wsi_abmil", "teacher_fusion", "student_kd"}
        assert metrics["value"].notna().all()
        logs = list((workdir / "results" / cohort / "logs").rglob("*.log"))
        assert len(logs) > 20


def test_rerun_after_completion_does_nothing(run):
    workdir, config = run
    assert planned_jobs(workdir, config) == set()


def test_deleting_one_slides_features_reruns_only_that_slide_and_dependents(run):
    workdir, config = run
    feats = sorted((workdir / "results" / "a" / "features" / "resnet18_trunc").glob("*.h5"))
    victim = feats[0]
    backup = victim.with_suffix(".bak")
    shutil.copy2(victim, backup)
    victim.unlink()
    try:
        jobs = planned_jobs(workdir, config)
    finally:
        shutil.move(backup, victim)
    slide = victim.stem
    expected = {("extract_features", (("cohort", "a"), ("extractor", "resnet18_trunc"),
                                      ("slide", slide))),
                ("evaluate", (("cohort", "a"),)), ("report", (("cohort", "a"),)),
                ("all", ())}
    expected |= {("train", (("cohort", "a"), ("fold", str(k)), ("model", m)))
                 for m in MODELS_WITH_WSI for k in (0, 1)}
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
                     "report", "all"}


def test_lint_passes():
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
