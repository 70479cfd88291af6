"""One expression matrix per cohort for pathway scoring, by input kind, and RNA QC.

What each kind becomes (``rna/normalised.parquet``, patients x genes):

=========  ==================================================================================
counts     DESeq2 median-of-ratios size factors + blind parametric VST (pydeseq2), on every
           gene of the table (no cohort-level gene filter: all-zero genes simply tie).
tpm, fpkm  log2(x + 1), sample by sample.
log2       used as given (e.g. log2(TPM + 0.001) from UCSC Xena).
zscore     used as given (per-gene z-scores computed by the data provider, e.g. cBioPortal).
=========  ==================================================================================

Where a cohort-level fit enters, and why it cannot leak across folds:

* Size factors (geometric-mean reference over the cohort) scale a whole sample, and the VST
  with a parametric dispersion trend is one monotone function applied to every gene. Pathway
  scores (ssGSEA, rna/pathways.py) use only the ranks of genes within a sample, and those ranks
  are the same before and after both, so a patient's scores do not depend on the other
  patients (tested end to end: scores from the full cohort equal scores from a sub-cohort).
  The VST matrix itself is only used for QC (PCA) here; a model that takes gene-level VST
  values as input must fit the VST on its training fold (:func:`deseq2_vst` with ``fit_on``).
* There is deliberately no gene filter "at least N reads over the cohort": it would make the
  gene universe, hence every sample's ranks, depend on the other samples.
* z-scores arrive already standardised over the provider's cohort; that fit is outside our
  control and is recorded in ``rna/summary.json`` and the log.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from histodistill.errors import InputError
from histodistill.io import write_json, write_parquet, write_tsv
from histodistill.rna.table import RnaSource, read_expression
from histodistill.sheets import read_clinical

log = logging.getLogger(__name__)


def _trend_genes(normed_means: np.ndarray, nsub: int) -> np.ndarray:
    """R DESeq2 ``vst()``'s gene subset: of the genes with mean normalised count > 5, ``nsub``
    evenly spaced in order of mean (``o[round(seq(1, length(o), length = nsub))]``)."""
    candidates = np.flatnonzero(normed_means > 5)
    if len(candidates) < nsub:
        return np.flatnonzero(normed_means > 0)  # varianceStabilizingTransformation: all genes
    order = candidates[np.argsort(normed_means[candidates], kind="stable")]
    picks = np.round(np.linspace(1, len(order), nsub)).astype(int) - 1
    return order[picks]


def _vst_function(normed: np.ndarray, coeffs: tuple[float, float] | None, mean_disp: float
                  ) -> np.ndarray:
    """DESeq2's closed-form VST for a parametric trend a0 + a1/mu, or a constant dispersion."""
    if coeffs is not None:
        a0, a1 = coeffs
        return np.log2((1 + a1 + 2 * a0 * normed
                        + 2 * np.sqrt(a0 * normed * (1 + a1 + a0 * normed))) / (4 * a0))
    return (2 * np.arcsinh(np.sqrt(mean_disp * normed)) - np.log(mean_disp) - np.log(4)) / np.log(2)


def deseq2_vst(counts: pd.DataFrame, n_cpus: int = 1, fit_on: Sequence[str] | None = None,
               nsub: int = 1000) -> tuple[pd.DataFrame, pd.Series]:
    """(VST samples x genes, size factors) of integer counts samples x genes, as R DESeq2's
    ``vst(blind = TRUE, fitType = "parametric", nsub = 1000)``.

    Size factors are median-of-ratios over all genes; the dispersion trend is fitted on
    ``nsub`` genes spread over the range of mean expression (R's subset rule; all genes when
    fewer than ``nsub`` have a mean above 5, which is ``varianceStabilizingTransformation``).
    ``fit_on``: the samples that fit the geometric-mean reference and the trend; the other
    samples are transformed with that fit (DESeq2's frozen transform). Default: all samples.
    """
    import warnings

    from pydeseq2.dds import DeseqDataSet
    from pydeseq2.preprocessing import deseq2_norm_fit, deseq2_norm_transform

    values = counts.to_numpy()
    fit_rows = (np.arange(len(counts)) if fit_on is None
                else counts.index.get_indexer(pd.Index(list(fit_on))))
    logmeans, filtered = deseq2_norm_fit(values[fit_rows])
    if not filtered.any():
        raise InputError("no gene is expressed in every sample, so DESeq2's median-of-ratios "
                         "size factors are undefined; check the count table")
    normed, sf = deseq2_norm_transform(values, logmeans, filtered)
    genes = _trend_genes(normed[fit_rows].mean(axis=0), nsub)
    sub = counts.iloc[fit_rows, genes]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        dds = DeseqDataSet(counts=sub, metadata=pd.DataFrame(index=sub.index), design="~1",
                           quiet=True, n_cpus=n_cpus)
        dds.obs["size_factors"] = sf[fit_rows]
        dds.layers["normed_counts"] = normed[np.ix_(fit_rows, genes)]
        dds.var["_normed_means"] = dds.layers["normed_counts"].mean(axis=0)
        dds.fit_genewise_dispersions(vst=True)
        dds._fit_parametric_dispersion_trend(vst=True)  # noqa: SLF001 - pinned pydeseq2
    coeffs = dds.uns.get("vst_trend_coeffs")
    if coeffs is None:  # pydeseq2 fell back to a mean trend (it warned in the log)
        log.warning("parametric dispersion trend did not converge; using a mean dispersion")
    mean_disp = float(np.nanmean(dds.var["vst_genewise_dispersions"]))
    vst = _vst_function(normed, None if coeffs is None else (float(coeffs["a0"]),
                                                              float(coeffs["a1"])), mean_disp)
    return (pd.DataFrame(vst, index=counts.index, columns=counts.columns),
            pd.Series(np.asarray(sf), index=counts.index, name="size_factor"))


def transform(values: pd.DataFrame, kind: str, n_cpus: int = 1
              ) -> tuple[pd.DataFrame, pd.Series | None]:
    """(matrix for pathway scoring, size factors or None) - see the module table."""
    if kind == "counts":
        if len(values) < 3:
            raise InputError(f"only {len(values)} samples with counts; DESeq2 needs at least 3")
        return deseq2_vst(values, n_cpus=n_cpus)
    if kind in ("tpm", "fpkm"):
        return np.log2(values + 1.0), None
    if kind in ("log2", "zscore"):
        return values.astype(np.float64), None
    raise InputError(f"unknown RNA kind {kind!r}")


def sample_table(values: pd.DataFrame, kind: str, size_factors: pd.Series | None
                 ) -> pd.DataFrame:
    linear = kind in ("counts", "tpm", "fpkm")
    return pd.DataFrame({
        "patient": values.index,
        "total": values.sum(axis=1).to_numpy() if linear else np.nan,
        "size_factor": size_factors.to_numpy() if size_factors is not None else np.nan,
        "genes_detected": (values > 0).sum(axis=1).to_numpy() if linear else np.nan,
    })


def normalise(source: RnaSource, clinical_path: str | Path, out_parquet: str | Path,
              out_samples: str | Path, out_summary: str | Path, out_qc_png: str | Path,
              n_cpus: int = 1) -> None:
    clinical = read_clinical(clinical_path)
    patients = clinical.index.tolist()
    expr = read_expression(source, patients)
    values = expr.values
    matrix, size_factors = transform(values, expr.kind, n_cpus=n_cpus)
    matrix.index.name = "patient"
    matrix.columns.name = "gene"
    log.info("%s: %d patients x %d genes (%s)", source.path, *matrix.shape, expr.kind)
    samples = sample_table(values, expr.kind, size_factors)
    present = set(values.index)
    without = [p for p in patients if p not in present]
    write_parquet(out_parquet, matrix)
    write_tsv(out_samples, samples)
    write_json(out_summary, {
        "path": str(source.path), "kind": expr.kind, "n_patients": len(patients),
        "n_with_rna": len(values), "patients_without_rna": without,
        "n_genes": matrix.shape[1], "samples_left_out": expr.left_out, "notes": expr.notes,
        "transform": {"counts": "DESeq2 size factors + blind parametric VST",
                      "tpm": "log2(x + 1)", "fpkm": "log2(x + 1)", "log2": "as given",
                      "zscore": "as given"}[expr.kind]})
    from histodistill.rna.qc import plot_normalisation_qc

    plot_normalisation_qc(samples, matrix, clinical, expr.kind, out_qc_png)

