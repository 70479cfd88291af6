"""The workflow through ``workflow/profiles/slurm`` on a real SLURM cluster with accounting.

The cluster (munge, MariaDB, slurmdbd, slurmctld, slurmd) is started by the test and every
daemon is stopped afterwards. The profile is the repository's, with only what its comments mark
as site-specific edited (partition, account), plus what this 2-CPU, GPU-less CI node needs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPO
from slurm_cluster import ACCOUNT, PARTITION, SlurmCluster, existing_config, missing_binaries
from workflow_helpers import sheet_cohort, slurm_submissions, snakemake, tiny_config, tiny_demo

pytestmark = [pytest.mark.slow, pytest.mark.slurm]
PROFILE = REPO / "workflow" / "profiles" / "slurm" / "config.yaml"
APT = "apt-get install slurmctld slurmd slurm-client slurmdbd munge mariadb-server"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    if missing := missing_binaries():
        pytest.skip(f"no SLURM here (missing {', '.join(missing)}); on Debian: {APT}")
    if os.geteuid() != 0:
        pytest.skip("starting SLURM's daemons needs root")
    if existing_config():
        pytest.skip(f"{existing_config()} exists: this machine has its own SLURM; the test only "
                    "starts a throwaway cluster where there is none")
    with SlurmCluster(tmp_path_factory.mktemp("slurm")) as running:
        yield running


def site_profile(folder: Path, **ci: object) -> Path:
    """The repository's SLURM profile with its site-specific values set for this cluster."""
    profile = yaml.safe_load(PROFILE.read_text())
    profile["default-resources"]["slurm_partition"] = PARTITION
    profile["default-resources"]["slurm_account"] = ACCOUNT
    profile["set-resources"]["extract_features"] = {"gpu": 0, "slurm_partition": PARTITION}
    profile.update(ci)
    (folder / "profile").mkdir()
    (folder / "profile" / "config.yaml").write_text(yaml.safe_dump(profile))
    return folder / "profile"


def submissions(out: str) -> dict[str, str]:
    """{SLURM job id: Snakemake's job id} of every job Snakemake submitted."""
    return {m.group(2): m.group(1) for m in
            re.finditer(r"Job (\S+) has been submitted with SLURM jobid (\d+)", out)}


def test_demo_runs_under_slurm_and_sacct_accounts_for_every_job(cluster, tmp_path):
    profile = site_profile(
        tmp_path, cores=2, **{"set-threads": {"extract_features": 1},  # a 2-CPU node
                              "group-components": ["slides=6"],
                              "slurm-init-seconds-before-status-checks": 5,
                              "latency-wait": 5, "retries": 0})
    config = tiny_config(a=tiny_demo(4))
    config["models"] = ["wsi_abmil"]
    config["features"]["slides_per_job"] = 6
    proc = snakemake(tmp_path, config, "--workflow-profile", str(profile), env=cluster.env)
    out = proc.stdout + proc.stderr
    assert (tmp_path / "results" / "a" / "report.html").is_file()
    metrics = pd.read_csv(tmp_path / "results" / "a" / "metrics.tsv", sep="\t")
    assert set(metrics["model"]) == {"wsi_abmil"}

    submitted = submissions(out)
    accounted = {j["JobID"]: j for j in cluster.sacct()}
    assert submitted and set(submitted) <= set(accounted), out[-3000:]
    for job_id in submitted:
        job = accounted[job_id]
        assert (job["State"], job["ExitCode"]) == ("COMPLETED", "0:0"), job
        assert (job["Partition"], job["Account"]) == (PARTITION, ACCOUNT), job
    # 12 slides: generation + segmentation/tiling in 2 SLURM jobs of 6 slides, extraction
    # in 2 shards of 6; no per-slide job was submitted on its own
    comments = sorted(accounted[j]["Comment"] for j in submitted)
    print("\n".join(comments))
    assert sum(c.startswith("rule_slides") for c in comments) == 2, comments
    assert sum(c.startswith("rule_extract_features_a_") for c in comments) == 2, comments
    assert not any(c.startswith(("rule_make_demo_slide", "rule_segment_and_tile"))
                   for c in comments), comments
    train = [accounted[j] for j in submitted if accounted[j]["Comment"].startswith("rule_train")]
    assert len(train) == 2 and all(j["ReqMem"] == "5048M" for j in train), train


def test_a_1000_slide_cohort_is_60_slurm_jobs_for_its_slides(tmp_path):
    """The README's job count: 1,000 slides -> 20 grouped segmentation jobs + 40 feature shards
    (25 slides each) instead of 2,000; every shard gets the GPU the profile sets for
    extract_features."""
    config = tiny_config(big=sheet_cohort(tmp_path, "big", 1000))
    config["splits"]["n_folds"] = 5
    config["features"]["slides_per_job"] = 25  # the default
    proc = snakemake(tmp_path, config, "--dry-run", "--workflow-profile",
                     str(PROFILE.parent))
    out = proc.stdout + proc.stderr
    groups, singles = slurm_submissions(out)
    assert groups.count("slides") == 20 and "segment_and_tile" not in singles
    shards = [r for r in singles if r.startswith("extract_features_big_")]
    assert sorted(shards) == sorted(f"extract_features_big_{k}" for k in range(40))
    # 16 models (the default list with its teachers) x 5 folds of training, 5 attention maps
    # (histology-only models that learn attention, controls left out), 6 final-model bundles
    # (histology-only models, controls left out), 8 other cohort-level
    assert len(singles) - len(shards) == 99 and len(singles) + len(groups) == 159, singles
    shard_jobs = re.findall(r"rule extract_features_big_\d+:.*?resources: [^\n]*", out,
                            re.DOTALL)
    assert len(shard_jobs) == 40
    for job in shard_jobs:  # the profile's GPU, partition and threads; 15 + 6 min per slide
        resources = job.rsplit("resources: ", 1)[1]
        assert {"gpu=1", "slurm_partition=gpu", "runtime=165"} <= set(resources.split(", "))
        assert "threads: 2" in job, job  # the profile's 4, capped by this run's --cores 2


def test_a_job_killed_for_memory_is_resubmitted_with_more_and_completes(cluster, tmp_path):
    """SLURM kills a job that uses more memory than it asked for; the profile's retries
    resubmit it with mem_mb scaled by the attempt, and the run completes. Training is given a
    deliberately small 600 MB x attempt (through the profile, as a site would) against the
    ~800 MB an rna_snn fold uses, so its first attempt is killed."""
    profile = site_profile(tmp_path, cores=2, **{
        "set-resources": {"train": {"mem_mb": "600 * attempt"}},
        "slurm-init-seconds-before-status-checks": 5, "latency-wait": 5})
    assert yaml.safe_load((profile / "config.yaml").read_text())["retries"] == 2
    config = tiny_config(a=tiny_demo(4))
    config["models"] = ["rna_snn"]
    target = "results/a/models/rna_snn/fold0/predictions.tsv"
    proc = snakemake(tmp_path, config, target, "--workflow-profile", str(profile),
                     env=cluster.env)
    out = proc.stdout + proc.stderr
    assert (tmp_path / target).is_file()
    accounted = {j["JobID"]: j for j in cluster.sacct()}
    train = [accounted[j] for j in sorted(submissions(out), key=int)
             if accounted[j]["Comment"].startswith("rule_train")]
    print("\n".join(str(j) for j in train))
    assert [j["ReqMem"] for j in train][:2] == ["600M", "1200M"], train
    # the first attempt's training step was killed for its memory (the allocation then
    # FAILED), and the job's own SLURM log, the one a user reads, says so
    assert train[0]["State"] == "FAILED" and train[-1]["State"] == "COMPLETED", train
    first_log = next((tmp_path / ".snakemake" / "slurm_logs" / "rule_train").rglob(
        f"{train[0]['JobID']}.log")).read_text()
    assert "exceeded memory limit" in first_log, first_log[-2000:]
