"""DESeq2 normalisation with pydeseq2: median-of-ratios size factors and the VST.

Both are label-free transforms fitted on the whole cohort (the geometric-mean reference of the
size factors, the dispersion trend of the VST). Neither touches outcomes. Downstream, pathway
scores use within-sample gene ranks only (see rna/pathways.py), and those ranks are invariant
to both transforms: size factors scale a whole sample, and the VST is one monotone function
applied to every gene. So no cohort-level fit reaches the models through the pathway scores.
"""

from __future__ import annotations

import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from histodistill.errors import InputError  # noqa: E402
from histodistill.io import atomic_path, write_parquet, write_tsv  # noqa: E402
from histodistill.rna.counts import match_samples, read_counts  # noqa: E402
from histodistill.sheets import read_clinical  # noqa: E402

log = logging.getLogger(__name__)


def deseq2_vst(counts: pd.DataFrame, n_cpus: int = 1) -> tuple[pd.DataFrame, pd.Series]:
    """(VST matrix samples x genes, size factors) of integer counts samples x genes."""
    import warnings

    from pydeseq2.dds import DeseqDataSet

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        dds = DeseqDataSet(counts=counts, metadata=pd.DataFrame(index=counts.index),
                           design="~1", quiet=True, n_cpus=n_cpus)
        dds.fit_size_factors()
        dds.vst(use_design=False)
    vst = pd.DataFrame(np.asarray(dds.layers["vst_counts"]), index=counts.index,
                       columns=counts.columns)
    size_factors = pd.Series(np.asarray(dds.obs["size_factors"]), index=counts.index,
                             name="size_factor")
    return vst, size_factors


def normalise_counts(counts_path: str | Path, clinical_path: str | Path, out_parquet: str | Path,
                     out_size_factors: str | Path, out_qc_png: str | Path,
                     min_total_count: int = 10, n_cpus: int = 1) -> None:
    clinical = read_clinical(clinical_path)
    counts = match_samples(read_counts(counts_path), clinical.index.tolist(), counts_path)
    if len(counts) < 3:
        raise InputError(f"{counts_path}: only {len(counts)} samples match the clinical sheet; "
                         "DESeq2 needs at least 3")
    keep = counts.sum(axis=0) >= min_total_count
    log.info("%d samples; keeping %d of %d genes with >= %d reads in total", len(counts),
             int(keep.sum()), counts.shape[1], min_total_count)
    counts = counts.loc[:, keep]
    vst, size_factors = deseq2_vst(counts, n_cpus=n_cpus)
    vst.index.name = "patient"
    write_parquet(out_parquet, vst)
    write_tsv(out_size_factors, pd.DataFrame({
        "patient": counts.index, "library_size": counts.sum(axis=1).to_numpy(),
        "size_factor": size_factors.to_numpy()}))
    _qc_plot(counts, vst, clinical, out_qc_png)


def _qc_plot(counts: pd.DataFrame, vst: pd.DataFrame, clinical: pd.DataFrame,
             out_png: str | Path) -> None:
    lib = counts.sum(axis=1).sort_values()
    top = vst.loc[:, vst.var().sort_values(ascending=False).index[:500]]
    centred = top - top.mean()
    u, s, _ = np.linalg.svd(centred.to_numpy(), full_matrices=False)
    pcs = u[:, :2] * s[:2]
    explained = s[:2] ** 2 / (s**2).sum()
    event = clinical.loc[vst.index, "event"].to_numpy()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.bar(range(len(lib)), lib.to_numpy() / 1e6, color="#4c72b0")
    ax1.set(xlabel="samples (sorted)", ylabel="library size (M reads)", title="Library sizes")
    for value, label, colour in ((0, "censored", "#55a868"), (1, "event", "#c44e52")):
        sel = event == value
        ax2.scatter(pcs[sel, 0], pcs[sel, 1], s=18, c=colour, label=label)
    ax2.set(xlabel=f"PC1 ({explained[0]:.0%})", ylabel=f"PC2 ({explained[1]:.0%})",
            title="PCA of VST (500 most variable genes)")
    ax2.legend(frameon=False)
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)
