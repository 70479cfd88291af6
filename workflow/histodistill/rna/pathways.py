"""Per-sample pathway scores with gseapy (ssGSEA or GSVA) from a local GMT.

ssGSEA's enrichment score (ES) with rank sample normalisation depends only on the ranks of the
genes within one sample, so a patient's score does not depend on which other patients are in
the cohort - it is safe to compute once per cohort and use across folds. (gseapy's NES divides
by the range of ES over the whole matrix, a cohort-level fit; we keep the raw ES.) GSVA
estimates each gene's distribution across samples and is therefore cohort-level (label-free);
choose it knowing that. Standardisation of the scores happens inside each training fold.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from histodistill.errors import InputError
from histodistill.io import write_parquet, write_tsv
from histodistill.rna.gmt import read_gmt

log = logging.getLogger(__name__)

Method = Literal["ssgsea", "gsva"]


def gene_set_coverage(gene_sets: dict[str, list[str]], genes: pd.Index, min_size: int,
                      max_size: int) -> pd.DataFrame:
    present = set(genes)
    rows = []
    for name, members in gene_sets.items():
        found = sum(g in present for g in members)
        rows.append({"gene_set": name, "n_genes": len(members), "n_found": found,
                     "fraction_found": found / len(members),
                     "used": min_size <= found <= max_size})
    return pd.DataFrame(rows)


def pathway_scores(expr: pd.DataFrame, gene_sets: dict[str, list[str]], method: Method,
                   min_size: int = 15, max_size: int = 500, threads: int = 1, seed: int = 0
                   ) -> pd.DataFrame:
    """Scores (samples x gene sets, in GMT order) of expression ``expr`` (samples x genes)."""
    import gseapy

    data = expr.T  # gseapy wants genes x samples
    if method == "ssgsea":
        res = gseapy.ssgsea(data=data, gene_sets=gene_sets, outdir=None,
                            sample_norm_method="rank", min_size=min_size, max_size=max_size,
                            threads=threads, seed=seed, no_plot=True, verbose=False)
    elif method == "gsva":
        res = gseapy.gsva(data=data, gene_sets=gene_sets, outdir=None, min_size=min_size,
                          max_size=max_size, threads=threads, seed=seed, verbose=False)
    else:
        raise InputError(f"rna.score_method must be 'ssgsea' or 'gsva', got {method!r}")
    table = res.res2d.pivot(index="Name", columns="Term", values="ES").astype(np.float64)
    order = [s for s in gene_sets if s in table.columns]
    return table.loc[expr.index, order]


def score_pathways(normalised_parquet: str | Path, gmt_path: str | Path, out_parquet: str | Path,
                   out_coverage: str | Path, method: Method = "ssgsea", min_size: int = 15,
                   max_size: int = 500, threads: int = 1, seed: int = 0) -> None:
    expr = pd.read_parquet(normalised_parquet)
    gene_sets = read_gmt(gmt_path)
    coverage = gene_set_coverage(gene_sets, expr.columns, min_size, max_size)
    dropped = coverage.loc[~coverage["used"], "gene_set"].tolist()
    if dropped:
        log.warning("%d of %d gene sets have fewer than %d (or more than %d) genes present and "
                    "are dropped: %s", len(dropped), len(gene_sets), min_size, max_size,
                    ", ".join(dropped[:10]))
    if coverage["used"].sum() == 0:
        raise InputError(f"no gene set of {gmt_path} has >= {min_size} genes in "
                         f"{normalised_parquet}; are the gene IDs HGNC symbols like the GMT's?")
    scores = pathway_scores(expr, {k: v for k, v in gene_sets.items() if k not in dropped},
                            method, min_size, max_size, threads, seed)
    scores.index.name = "patient"
    log.info("%s scores: %d patients x %d gene sets", method, *scores.shape)
    write_parquet(out_parquet, scores)
    write_tsv(out_coverage, coverage)
