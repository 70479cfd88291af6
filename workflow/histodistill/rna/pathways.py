"""Per-patient pathway scores with gseapy (ssGSEA or GSVA) from a local gene-set file.

* **ssGSEA** (default): the enrichment score (ES) with rank sample normalisation depends only
  on the ranks of the genes within one sample, so a patient's score does not depend on which
  other patients are in the cohort - computed once per cohort, used by every fold. (gseapy's
  NES divides by the range of ES over the whole matrix, a cohort-level fit; we keep the raw ES.)
* **GSVA** estimates each gene's distribution over samples (kernel CDF), a fit. It is therefore
  done **per fold**: fold k's training-part patients (train + inner val) are scored by GSVA on
  themselves, and each held-out patient by GSVA on the training part plus that patient alone,
  so no held-out patient influences any score but its own. The output then has a (fold,
  patient, held_out) index; :func:`load_scores` gives one fold's table. Cost: one GSVA run
  per patient.

Standardisation of the scores happens inside each training fold (training/fold.py).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from histodistill.errors import InputError
from histodistill.io import write_parquet, write_tsv
from histodistill.rna.gmt import read_gene_sets
from histodistill.sheets import read_clinical
from histodistill.splits import read_fold_table

log = logging.getLogger(__name__)

Method = Literal["ssgsea", "gsva"]


ENOUGH_GENES = 30
"""Default ``rna.enough_genes``: a set with this many genes present is scored whatever share
of its list they are (``min_fraction`` guards sets that only a few genes would represent)."""


def gene_set_coverage(gene_sets: dict[str, list[str]], genes: pd.Index, min_size: int,
                      max_size: int, min_fraction: float = 0.0,
                      enough_genes: int = ENOUGH_GENES) -> pd.DataFrame:
    """Per gene set: genes listed, genes found in the table, the fraction, whether it is
    scored and why not: ``min_size <= found <= max_size`` and (``found / listed >=
    min_fraction`` or ``found >= enough_genes``)."""
    present = set(genes)
    rows = []
    for name, members in gene_sets.items():
        found = sum(g in present for g in members)
        fraction = found / len(members)
        if found < min_size:
            reason = f"fewer than {min_size} genes present"
        elif found > max_size:
            reason = f"more than {max_size} genes present"
        elif fraction < min_fraction and found < enough_genes:
            reason = f"under {min_fraction:.0%} of its genes present"
        else:
            reason = ""
        rows.append({"gene_set": name, "n_genes": len(members), "n_found": found,
                     "fraction_found": fraction, "used": not reason, "dropped_because": reason})
    return pd.DataFrame(rows)


def fraction_advice(coverage: pd.DataFrame) -> str:
    """What ``rna.min_fraction`` would score the sets dropped only by it, or ''."""
    reasons = coverage.get("dropped_because", pd.Series("", index=coverage.index))
    by_fraction = coverage.loc[reasons.fillna("").astype(str).str.startswith("under ")]
    if by_fraction.empty:
        return ""
    lowest = np.floor(100 * by_fraction["fraction_found"].min()) / 100
    return (f"{len(by_fraction)} sets have enough genes for scoring but under "
            f"rna.min_fraction of their list (a small gene panel?); rna.min_fraction: "
            f"{lowest:.2f} would score them (or lower rna.enough_genes)")


def usable_gene_sets(gene_sets_path: str | Path, genes: pd.Index, min_size: int,
                     max_size: int | None, min_fraction: float, table: object,
                     enough_genes: int = ENOUGH_GENES
                     ) -> tuple[pd.DataFrame, dict[str, list[str]]]:
    """The collection's coverage table and its usable sets ({name: genes}, file order); how
    many are kept, which are dropped and why, and the setting that would keep those dropped
    for their share are logged; no usable set is an error naming both files. ``max_size``
    None: no upper limit."""
    gene_sets = read_gene_sets(gene_sets_path)
    upper = np.iinfo(np.int64).max if max_size is None else max_size
    coverage = gene_set_coverage(gene_sets, genes, min_size, upper, min_fraction, enough_genes)
    dropped = coverage.loc[~coverage["used"]]
    log.info("%d of %d gene sets of %s are scored on the %d genes of %s",
             int(coverage["used"].sum()), len(coverage), gene_sets_path, len(genes), table)
    if len(dropped):
        log.warning("%d of %d gene sets are dropped: %s", len(dropped), len(gene_sets),
                    "; ".join(f"{r.gene_set} ({r.n_found}/{r.n_genes}: {r.dropped_because})"
                              for r in dropped.itertuples()))
        advice = fraction_advice(coverage)
        if advice:
            log.warning("%s", advice)
    kept = set(coverage.loc[coverage["used"], "gene_set"])
    if not kept:
        raise InputError(f"no gene set of {gene_sets_path} has >= {min_size} genes in "
                         f"{table}; are the gene IDs HGNC symbols like the sets'?")
    return coverage, {k: v for k, v in gene_sets.items() if k in kept}


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


def gsva_by_fold(expr: pd.DataFrame, gene_sets: dict[str, list[str]], folds: pd.DataFrame,
                 min_size: int, max_size: int, threads: int = 1, seed: int = 0
                 ) -> pd.DataFrame:
    """GSVA fitted inside each fold (module docstring); index (fold, patient, held_out)."""
    parts = []
    for k, rows in folds.groupby("fold", sort=True):
        with_rna = rows[rows["patient"].isin(expr.index)]
        reference = with_rna.loc[with_rna["role"] != "test", "patient"].tolist()
        held_out = with_rna.loc[with_rna["role"] == "test", "patient"].tolist()
        if len(reference) < 3:
            raise InputError(f"fold {k}: only {len(reference)} training patients with RNA; "
                             "GSVA needs at least 3")
        fold_scores = [pathway_scores(expr.loc[reference], gene_sets, "gsva", min_size,
                                      max_size, threads, seed)]
        for patient in held_out:
            scores = pathway_scores(expr.loc[[*reference, patient]], gene_sets, "gsva",
                                    min_size, max_size, threads, seed)
            fold_scores.append(scores.loc[[patient]])
        table = pd.concat(fold_scores)
        held = np.isin(table.index, held_out)
        table.index = pd.MultiIndex.from_arrays([[int(k)] * len(table), table.index, held],
                                                names=["fold", "patient", "held_out"])
        parts.append(table)
        log.info("GSVA fold %s: %d reference + %d held-out patients", k, len(reference),
                 len(held_out))
    return pd.concat(parts)


def load_scores(path: str | Path, fold: int | None = None) -> pd.DataFrame:
    """Pathway scores (patients x sets) as one fold's models must see them.

    Per-fold tables (GSVA) need ``fold``; ``fold=None`` then gives each patient's score from
    the fold that held it out (for display). Sample-wise tables (ssGSEA) are the same for all.
    """
    scores = pd.read_parquet(path)
    if "fold" not in scores.index.names:
        return scores
    if fold is not None:
        return scores.xs(fold, level="fold").droplevel("held_out")
    return scores.xs(True, level="held_out").droplevel("fold")


def score_pathways(normalised_parquet: str | Path, gene_sets_path: str | Path,
                   clinical_path: str | Path, out_parquet: str | Path, out_coverage: str | Path,
                   out_heatmap: str | Path, method: Method = "ssgsea", min_size: int = 15,
                   max_size: int = 500, min_fraction: float = 0.25, threads: int = 1,
                   seed: int = 0, folds_tsv: str | Path | None = None,
                   enough_genes: int = ENOUGH_GENES) -> None:
    expr = pd.read_parquet(normalised_parquet)
    coverage, used = usable_gene_sets(gene_sets_path, expr.columns, min_size, max_size,
                                      min_fraction, normalised_parquet, enough_genes)
    if method == "gsva":
        if folds_tsv is None:
            raise InputError("GSVA is fitted per fold and needs the fold table")
        scores = gsva_by_fold(expr, used, read_fold_table(folds_tsv), min_size, max_size,
                              threads, seed)
    else:
        scores = pathway_scores(expr, used, method, min_size, max_size, threads, seed)
        scores.index.name = "patient"
    log.info("%s scores: %d rows x %d gene sets", method, *scores.shape)
    write_parquet(out_parquet, scores)
    write_tsv(out_coverage, coverage)
    from histodistill.rna.qc import plot_pathway_heatmap

    plot_pathway_heatmap(load_scores(out_parquet), read_clinical(clinical_path), out_heatmap)
