"""Helpers: run Snakemake on tiny configs in a temporary working directory."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO

GENESETS = REPO / "resources" / "genesets"


def tiny_config(**cohorts: dict) -> dict:
    """A config small enough for CI: tiny slides, 2 folds, few epochs."""
    return {
        "cohorts": cohorts,
        "genesets": {"hallmark": str(GENESETS / "h.all.v7.0.symbols.gmt")},
        "features": {"extractor": "resnet18_trunc", "batch_size": 32},
        "splits": {"n_folds": 2, "val_fraction": 0.25, "seed": 0},
        "train": {"epochs": 2, "min_epochs": 1, "n_bins": 2, "hidden": 16, "lr": 0.001,
                  "max_patches": 64},
        "evaluate": {"n_bootstrap": 50, "horizons": [6, 12], "attention_patients": 1},
    }


def tiny_demo(seed: int) -> dict:
    return {"demo": {"n_patients": 12, "seed": seed, "second_slide_fraction": 0.0,
                     "rna_missing_fraction": 0.15, "slide_width_um": 768.0,
                     "slide_height_um": 576.0, "n_genes": 1200,
                     "median_survival_months": 18.0}}


def snakemake(workdir: Path, config: dict, *args: str, check: bool = True
              ) -> subprocess.CompletedProcess[str]:
    cfg = workdir / "config.yaml"
    cfg.write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory",
           str(workdir), "--configfile", str(cfg), "--cores", "2", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if check and proc.returncode != 0:
        pytest.fail(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n"
                    f"{proc.stderr[-5000:]}")
    return proc


def planned_jobs(workdir: Path, config: dict) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    """(rule, sorted wildcards) of every job a dry run plans."""
    proc = snakemake(workdir, config, "--dry-run")
    out = proc.stdout + proc.stderr
    jobs, rule = set(), None
    for line in out.splitlines():
        if m := re.match(r"^(?:local)?rule (\w+):", line.strip()):
            rule = m.group(1)
            jobs.add((rule, ()))
        elif rule and (m := re.match(r"^wildcards: (.*)$", line.strip())):
            jobs.discard((rule, ()))
            pairs = tuple(sorted(tuple(kv.split("=", 1)) for kv in m.group(1).split(", ")))
            jobs.add((rule, pairs))
            rule = None
    total = re.search(r"^total\s+(\d+)\s*$", out, re.MULTILINE)
    if total:  # the parse must account for every job Snakemake counted
        assert len(jobs) == int(total.group(1)), out[-3000:]
    else:
        assert "Nothing to be done" in out, out[-3000:]
    return jobs
