"""Seconds for a dry run of a 1,000-slide x 3-cohort config, and SLURM jobs it would submit.

    python benchmarks/dag_dryrun.py [--slides 1000] [--cohorts 3] [--slides-per-job 25]

Real-style cohorts (sheets, a raw count table, empty slide files: a dry run only checks that
they exist) in a temporary folder, the default 8 models x 5 folds, feature shards of
``--slides-per-job`` slides (one generated rule each). Times, each in a fresh
process as a user runs it, both until the DAG is built (Snakemake prints its "Job stats"
table) and until the dry run ends (it then walks every job once more, as it would to run it):
  * ``snakemake -n`` of the whole config (local executor), and of one cohort;
  * the same through ``workflow/profiles/slurm`` (counts the SLURM jobs: grouped slide jobs);
  * Snakemake's own floor: a trivial Snakefile with as many jobs (2 chained ``script:`` rules
    per slide, as ours), to separate our overhead from Snakemake's.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "workflow")]

from workflow_helpers import (  # noqa: E402
    sheet_cohort,
    slurm_submissions,
    tiny_config,
    total_jobs,
)

TRIVIAL = """
N = [f"s{{i}}" for i in range({n})]
rule all:
    input: expand("b/{{s}}.txt", s=N)
rule a:
    output: "a/{{s}}.txt"
    resources: mem_mb=lambda wc, attempt: 1000 * attempt
    script: "x.py"
rule b:
    input: "a/{{s}}.txt"
    output: "b/{{s}}.txt"
    resources: mem_mb=lambda wc, attempt: 1000 * attempt
    script: "x.py"
"""


def dry_run(workdir: Path, *args: str) -> tuple[float, float, str]:
    """Seconds until the DAG is built ("Job stats" printed), seconds in all, and the output."""
    cmd = [sys.executable, "-m", "snakemake", "--directory", str(workdir), "--dry-run",
           "--cores", "2", *args]
    start = time.perf_counter()
    built = None
    lines = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if built is None and line.startswith("Job stats:"):
                built = time.perf_counter() - start
            lines.append(line)
    seconds = time.perf_counter() - start
    out = "".join(lines)
    if proc.returncode != 0 or built is None:
        raise SystemExit(out[-5000:])
    return built, seconds, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slides", type=int, default=1000)
    parser.add_argument("--cohorts", type=int, default=3)
    parser.add_argument("--slides-per-job", type=int, default=25)
    args = parser.parse_args()
    print(f"# {platform.node()}: {platform.processor() or platform.machine()}, "
          f"python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cohorts = {f"c{i}": sheet_cohort(root, f"c{i}", args.slides, seed=i)
                   for i in range(args.cohorts)}
        configs = {}
        for name, chosen in (("all", cohorts), ("one", dict(list(cohorts.items())[:1]))):
            cfg = tiny_config(**chosen)
            cfg["splits"]["n_folds"] = 5
            cfg["features"]["slides_per_job"] = args.slides_per_job
            configs[name] = root / f"{name}.yaml"
            configs[name].write_text(yaml.safe_dump(cfg))
        common = ["-s", str(REPO / "Snakefile"), "--replace-workflow-config"]
        profile = ["--workflow-profile", str(REPO / "workflow" / "profiles" / "slurm")]
        for name in ("one", "all"):
            n = args.slides * (1 if name == "one" else args.cohorts)
            built, secs, out = dry_run(root, *common, "--configfile", str(configs[name]),
                                       "--quiet", "rules")
            print(f"local dry run, {n} slides: DAG built in {built:.1f} s, dry run "
                  f"{secs:.1f} s, {total_jobs(out)} jobs")
            built, secs, out = dry_run(root, *common, "--configfile", str(configs[name]),
                                       *profile)
            groups, singles = slurm_submissions(out)
            print(f"slurm-profile dry run, {n} slides: DAG built in {built:.1f} s, dry run "
                  f"{secs:.1f} s, {total_jobs(out)} jobs "
                  f"-> {len(groups) + len(singles)} SLURM jobs ({len(groups)} of them grouped "
                  "slide jobs)")
        floor = root / "floor"
        floor.mkdir()
        n_items = args.slides * args.cohorts
        (floor / "Snakefile").write_text(TRIVIAL.format(n=n_items))
        (floor / "x.py").touch()
        built, secs, out = dry_run(floor, "-s", str(floor / "Snakefile"), "--quiet", "rules")
        print(f"Snakemake floor, trivial {total_jobs(out)}-job workflow: DAG built in "
              f"{built:.1f} s, dry run {secs:.1f} s")


if __name__ == "__main__":
    main()
