"""Wall time of the whole demo, and where it goes, from a fresh working directory.

    python benchmarks/demo_runtime.py --cores 2

Runs ``snakemake --cores N`` on config/config.yaml in a new temporary directory (nothing
cached), then sums the per-job ``benchmark:`` files of every rule. Prints a Markdown table
for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--config", type=Path, default=REPO / "config" / "config.yaml")
    ap.add_argument("--keep", action="store_true", help="keep the working directory")
    args = ap.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="histodistill-bench-"))
    cfg = yaml.safe_load(args.config.read_text())
    cfg["genesets"] = {k: str((REPO / v).resolve()) for k, v in cfg["genesets"].items()}
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory",
           str(workdir), "--configfile", str(workdir / "config.yaml"), "--cores",
           str(args.cores)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"snakemake failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")

    rows = []
    for tsv in (workdir / "results").glob("*/benchmarks/**/*.tsv"):
        parts = tsv.relative_to(workdir / "results").parts
        rule = parts[2] if len(parts) > 3 else tsv.stem.split("_fold")[0]
        # files named {rule}_{model|geneset|extractor}.tsv count as their rule
        rule = next((r for r in ("score_pathways", "attention", "index_features",
                                 "bundle_model", "score_cohort")
                     if rule.startswith(r)), rule)
        b = pd.read_csv(tsv, sep="\t")
        rows.append({"rule": rule, "s": float(b["s"].iloc[0]),
                     "max_rss_mb": float(pd.to_numeric(b["max_rss"], errors="coerce").iloc[0])})
    jobs = pd.DataFrame(rows)
    table = jobs.groupby("rule").agg(jobs=("s", "size"), total_s=("s", "sum"),
                                     mean_s=("s", "mean"), peak_rss_mb=("max_rss_mb", "max"))
    table = table.sort_values("total_s", ascending=False)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs "
          f"visible, --cores {args.cores}; python {platform.python_version()}")
    print(f"wall time: {wall:.0f} s for {len(jobs)} jobs; sum of job times "
          f"{jobs['s'].sum():.0f} s\n")
    print("| rule | jobs | total s | mean s/job | peak RSS (MB) |\n|---|---|---|---|---|")
    for rule, r in table.iterrows():
        print(f"| {rule} | {int(r.jobs)} | {r.total_s:.0f} | {r.mean_s:.1f} | "
              f"{r.peak_rss_mb:.0f} |")
    if not args.keep:
        subprocess.run(["rm", "-rf", str(workdir)], check=False)
    else:
        print(f"\nkept {workdir}")


if __name__ == "__main__":
    main()
