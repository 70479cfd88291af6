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
    """A config small enough for CI: tiny slides, 2 folds, few epochs; feature shards of 5
    slides (a 12-slide demo cohort is 3 shards)."""
    return {
        "cohorts": cohorts,
        "genesets": {"hallmark": str(GENESETS / "h.all.v7.0.symbols.gmt")},
        "features": {"extractor": "resnet18_trunc", "batch_size": 32, "slides_per_job": 5},
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


def snakemake(workdir: Path, config: dict, *args: str, check: bool = True,
              env: dict[str, str] | None = None, snakefile: Path = REPO / "Snakefile"
              ) -> subprocess.CompletedProcess[str]:
    cfg = workdir / "config.yaml"
    cfg.write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(snakefile), "--directory",
           str(workdir), "--configfile", str(cfg), "--cores", "2", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, env=env)
    if check and proc.returncode != 0:
        pytest.fail(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n"
                    f"{proc.stderr[-5000:]}")
    return proc


def planned_jobs(workdir: Path, config: dict, snakefile: Path = REPO / "Snakefile",
                 extra: tuple[str, ...] = ()) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    """(rule, sorted wildcards) of every job a dry run plans."""
    proc = snakemake(workdir, config, "--dry-run", *extra, snakefile=snakefile)
    out = proc.stdout + proc.stderr
    jobs, rule = set(), None
    for line in out.splitlines():
        if m := re.match(r"^(?:local)?rule (\w+):", line.strip()):
            rule = m.group(1)
            if shard := re.fullmatch(r"extract_features_(\w+)_(\d+)", rule):
                # a feature shard's rule: listed as its family, with cohort and shard index
                jobs.add(("extract_features", (("cohort", shard.group(1)),
                                               ("shard", shard.group(2)))))
                rule = None
                continue
            jobs.add((rule, ()))
        elif rule and (m := re.match(r"^wildcards: (.*)$", line.strip())):
            jobs.discard((rule, ()))
            pairs = tuple(sorted(tuple(kv.split("=", 1)) for kv in m.group(1).split(", ")))
            jobs.add((rule, pairs))
            rule = None
    total = total_jobs(out)
    if total is not None:  # the parse must account for every job Snakemake counted
        assert len(jobs) == total, out[-3000:]
    else:
        assert "Nothing to be done" in out, out[-3000:]
    return jobs


def total_jobs(out: str) -> int | None:
    """The job count of a dry run's "Job stats" table (None when there is nothing to do)."""
    total = re.search(r"^total\s+(\d+)\s*$", out, re.MULTILINE)
    return int(total.group(1)) if total else None


def slurm_submissions(out: str) -> tuple[list[str], list[str]]:
    """What a dry run through the SLURM profile would submit: the names of its group jobs,
    and the rules of its ungrouped jobs (printed flush left; ``all`` has no action and is
    never submitted)."""
    groups = re.findall(r"Group job (\w+) \(jobs in lexicogr", out)
    singles = [r for r in re.findall(r"^rule (\w+):", out, re.MULTILINE) if r != "all"]
    return groups, singles


def sheet_cohort(root: Path, name: str, n_slides: int, n_genes: int = 50,
                 seed: int = 0) -> dict:
    """A real-style cohort of ``n_slides`` one-slide patients for dry runs: sheets, a raw count
    table and *empty* slide files (a dry run only checks that they exist). Returns its config."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    folder = root / name
    (folder / "slides").mkdir(parents=True, exist_ok=True)
    patients = [f"{name}-P{i:05d}" for i in range(n_slides)]
    slides = [f"{p}-S1" for p in patients]
    for s in slides:
        (folder / "slides" / f"{s}.svs").touch()
    pd.DataFrame({"patient": patients, "slide": slides,
                  "path": [f"slides/{s}.svs" for s in slides], "mpp": 0.5}).to_csv(
        folder / "samples.tsv", sep="\t", index=False)
    pd.DataFrame({"patient": patients, "time": rng.uniform(1, 100, n_slides).round(2),
                  "event": rng.integers(0, 2, n_slides)}).to_csv(
        folder / "clinical.tsv", sep="\t", index=False)
    counts = pd.DataFrame(rng.poisson(50, (n_genes, n_slides)), columns=patients,
                          index=pd.Index([f"GENE{g}" for g in range(n_genes)], name="gene"))
    counts.to_csv(folder / "counts.tsv", sep="\t")
    return {"samples": str(folder / "samples.tsv"), "clinical": str(folder / "clinical.tsv"),
            "rna": {"path": str(folder / "counts.tsv"), "kind": "counts"}}


def shard_of(sheet: Path, slide: str, per_job: int = 5) -> str:
    """The index of the feature shard that holds ``slide``: its sample-sheet row // size."""
    import pandas as pd

    return str(list(pd.read_csv(sheet, sep="\t")["slide"]).index(slide) // per_job)
