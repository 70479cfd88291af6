"""A run killed mid-way (power cut, SIGKILL, a node lost) resumes where it stopped."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import h5py
import pytest
import yaml

from conftest import REPO
from workflow_helpers import planned_jobs, snakemake, tiny_config, tiny_demo

pytestmark = pytest.mark.slow


def _finished(folder):
    """Slides with a feature file in place (a job's temporary file starts with a dot)."""
    return {p.stem for p in folder.glob("*.h5") if not p.name.startswith(".")}


def test_a_killed_run_resumes_without_redoing_finished_jobs(tmp_path):
    config = tiny_config(a=tiny_demo(7))
    config["models"] = ["wsi_abmil"]
    config["features"]["slides_per_job"] = 12  # one shard, killed after 3 of its slides
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    feats = tmp_path / "results" / "a" / "features" / "resnet18_trunc"
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory",
           str(tmp_path), "--configfile", str(tmp_path / "config.yaml"), "--cores", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.time() + 900
        while len(_finished(feats)) < 3 and proc.poll() is None:
            assert time.time() < deadline, "no features after 15 min"
            time.sleep(0.02)
    finally:  # kill Snakemake and the job it is running, with no chance to clean up
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done = _finished(feats)
    assert 3 <= len(done) < 12, "the run was not stopped mid-shard"
    for slide in done:  # what looks finished is complete (written atomically)
        with h5py.File(feats / f"{slide}.h5") as f:
            assert f.attrs["status"] == "ok" and len(f["features"]) > 0

    # a killed Snakemake leaves its record of the running job and its lock; its messages name
    # the two flags of the README's "after a crash"
    again = snakemake(tmp_path, config, check=False)
    assert again.returncode != 0 and "--rerun-incomplete" in again.stdout + again.stderr
    locked = snakemake(tmp_path, config, "--rerun-incomplete", check=False)
    assert locked.returncode != 0 and "--unlock" in locked.stdout + locked.stderr
    snakemake(tmp_path, config, "--unlock")
    jobs = planned_jobs(tmp_path, config, extra=("--rerun-incomplete",))
    # the shard in flight is re-run: Snakemake cannot know which of its outputs are done
    assert {dict(w)["shard"] for r, w in jobs if r == "extract_features"} == {"0"}
    snakemake(tmp_path, config, "--rerun-incomplete")
    assert (tmp_path / "results" / "a" / "report.html").is_file()
    assert planned_jobs(tmp_path, config) == set()
    # the re-run shard restored the slides finished before the kill instead of recomputing
    # them (all but possibly one killed between its rename and its link into the store)
    log = (tmp_path / "results" / "a" / "logs" / "extract_features" / "resnet18_trunc" /
           "shard0.log").read_text()
    restored = {s for s in done if re.search(rf"{re.escape(s)}: \d+ tiles restored from", log)}
    assert len(done - restored) <= 1, (done, log)
