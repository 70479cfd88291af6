"""RNA step speed: normalise + score a large synthetic count table, as the two rules do.

    python benchmarks/rna_speed.py --samples 1000 --genes 20000 --threads 2

Writes a genes x samples count table (negative binomial, every Hallmark gene plus filler
genes) and a clinical sheet to a temporary folder, then times, in this process:
reading + checking the table, DESeq2 size factors + VST (pydeseq2, R's nsub = 1000 trend),
and ssGSEA of the 50 Hallmark sets; prints a markdown row per stage and the peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))

from histodistill.rna.gmt import read_gmt  # noqa: E402
from histodistill.rna.normalise import transform  # noqa: E402
from histodistill.rna.pathways import score_pathways  # noqa: E402
from histodistill.rna.table import RnaSource, read_expression  # noqa: E402

HALLMARK = REPO / "resources" / "genesets" / "h.all.v7.0.symbols.gmt"


def make_counts(n_samples: int, n_genes: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    hallmark = sorted({g for genes in read_gmt(HALLMARK).values() for g in genes})
    genes = hallmark + [f"FILLER{i}" for i in range(max(0, n_genes - len(hallmark)))]
    genes = genes[:n_genes]
    base = np.exp(rng.normal(3.0, 2.0, len(genes)))  # gene means over 3 orders of magnitude
    depth = rng.lognormal(0.0, 0.3, n_samples)
    mu = base[:, None] * depth[None, :]
    disp = 0.05 + 2.0 / np.sqrt(base)[:, None]
    counts = rng.negative_binomial(1.0 / disp, 1.0 / (1.0 + mu * disp))
    patients = [f"P{i:05d}" for i in range(n_samples)]
    return pd.DataFrame(counts, index=pd.Index(genes, name="gene"), columns=patients)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--genes", type=int, default=20000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        counts = make_counts(args.samples, args.genes, args.seed)
        counts.to_csv(d / "counts.tsv", sep="\t")
        patients = list(counts.columns)
        rng = np.random.default_rng(args.seed)
        pd.DataFrame({"patient": patients, "time": rng.uniform(1, 100, len(patients)),
                      "event": rng.integers(0, 2, len(patients))}).to_csv(
            d / "clinical.tsv", sep="\t", index=False)
        del counts
        rows = []
        t0 = time.perf_counter()
        expr = read_expression(RnaSource(str(d / "counts.tsv")), patients)
        values = expr.values
        rows.append(("read + check table", time.perf_counter() - t0))
        t0 = time.perf_counter()
        matrix, _ = transform(values, expr.kind, n_cpus=args.threads)
        rows.append(("DESeq2 size factors + VST", time.perf_counter() - t0))
        matrix.index.name = "patient"
        matrix.to_parquet(d / "n.parquet")
        t0 = time.perf_counter()
        score_pathways(d / "n.parquet", HALLMARK, d / "clinical.tsv", d / "p.parquet",
                       d / "cov.tsv", d / "heat.png", threads=args.threads)
        rows.append(("ssGSEA, 50 Hallmark sets (+ heatmap)", time.perf_counter() - t0))
        n_sets = pd.read_parquet(d / "p.parquet").shape[1]
    total = sum(t for _, t in rows)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.samples} samples x {args.genes} genes, {n_sets} gene sets scored, "
          f"threads={args.threads}\n")
    print("| stage | wall s |\n|---|---|")
    for name, t in rows:
        print(f"| {name} | {t:.1f} |")
    print(f"| **total** | **{total:.1f}** |\n\npeak RSS {peak_mb:.0f} MB")


if __name__ == "__main__":
    main()
