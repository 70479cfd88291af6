"""Gene-level privileged vectors (``privileged.source: genes``): the normalised expression of
the genes of a gene-set collection, grouped by set, fitted inside each fold.

This is what G-HANet and MCAT feed their genomic encoders: one SNN per gene family (MCAT's six
families, ``signatures.csv``) over the family's genes. Where the values come from:

* **counts**: DESeq2 size factors and the blind parametric VST (:func:`deseq2_vst`) are fitted
  on fold k's *training part* (train + inner val patients with RNA) and applied, frozen, to
  every patient of the fold, so a held-out patient's counts change no other patient's values
  (tested). Unlike rank-based ssGSEA, gene values do depend on that fit, hence one fit per fold.
* **tpm, fpkm, log2, zscore**: sample-wise (log2(x + 1) or as given), the same in every fold.

Columns are ``{set}|{gene}``, set by set in the file's order (a gene in two sets appears in
both, as in MCAT); sets with fewer than ``min_size`` genes present or under ``min_fraction`` of
their genes found are dropped with a warning, and there is no upper size limit (MCAT's
families have up to ~1,000 genes). The table's index is (fold, patient, held_out), the layout
of per-fold GSVA scores, read back by :func:`histodistill.rna.pathways.load_scores`. Per-gene
standardisation happens inside each training fold (training/fold.py).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from histodistill.errors import InputError
from histodistill.io import write_parquet, write_tsv
from histodistill.rna.gene_columns import SEP
from histodistill.rna.normalise import deseq2_vst, transform
from histodistill.rna.pathways import ENOUGH_GENES, usable_gene_sets
from histodistill.rna.table import RnaSource, read_expression
from histodistill.sheets import read_clinical
from histodistill.splits import read_fold_table

log = logging.getLogger(__name__)


def set_columns(gene_sets: dict[str, list[str]], present: pd.Index) -> list[tuple[str, str]]:
    """(set, gene) for every present gene of every set, in file order."""
    have = set(present)
    return [(name, g) for name, genes in gene_sets.items() for g in genes if g in have]


def gene_values_by_fold(values: pd.DataFrame, kind: str, pairs: list[tuple[str, str]],
                        folds: pd.DataFrame, n_cpus: int = 1) -> pd.DataFrame:
    """Values (index fold, patient, held_out; columns ``set|gene``) of ``values`` (patients
    with RNA x genes, as read), normalised per fold as the module docstring says."""
    genes = [g for _, g in pairs]
    names = [f"{s}{SEP}{g}" for s, g in pairs]
    sample_wise = None if kind == "counts" else transform(values, kind)[0]
    parts = []
    for k, rows in folds.groupby("fold", sort=True):
        with_rna = rows[rows["patient"].isin(values.index)]
        reference = with_rna.loc[with_rna["role"] != "test", "patient"].tolist()
        if len(reference) < 3:
            raise InputError(f"fold {k}: only {len(reference)} training patients with RNA; "
                             "a per-fold VST needs at least 3")
        patients = with_rna["patient"].tolist()
        if sample_wise is None:
            matrix, _ = deseq2_vst(values.loc[patients], n_cpus=n_cpus, fit_on=reference)
        else:
            matrix = sample_wise.loc[patients]
        table = pd.DataFrame(matrix[genes].to_numpy(np.float64), columns=names)
        table.index = pd.MultiIndex.from_arrays(
            [[int(k)] * len(patients), patients, ~with_rna["patient"].isin(reference).to_numpy()],
            names=["fold", "patient", "held_out"])
        parts.append(table)
        log.info("fold %s: gene values of %d patients (%s fitted on %d)", k, len(patients),
                 "VST" if sample_wise is None else kind, len(reference))
    return pd.concat(parts)


def gene_table(source: RnaSource, clinical_path: str | Path, folds_tsv: str | Path,
               gene_sets_path: str | Path, out_parquet: str | Path, out_coverage: str | Path,
               min_size: int = 15, min_fraction: float = 0.25, n_cpus: int = 1,
               enough_genes: int = ENOUGH_GENES) -> None:
    patients = read_clinical(clinical_path).index.tolist()
    expr = read_expression(source, patients)
    values = expr.values
    coverage, used = usable_gene_sets(gene_sets_path, values.columns, min_size, None,
                                      min_fraction, source.path, enough_genes)
    pairs = set_columns(used, values.columns)
    table = gene_values_by_fold(values, expr.kind, pairs, read_fold_table(folds_tsv), n_cpus)
    log.info("%d gene columns in %d sets, %d folds", table.shape[1], len(used),
             table.index.get_level_values("fold").nunique())
    write_parquet(out_parquet, table)
    write_tsv(out_coverage, coverage)
