"""RNA QC figures for the report: library sizes, PCA by outcome, pathway-score heatmap."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from histodistill.io import atomic_path  # noqa: E402

EVENT_COLOURS = ((0, "censored", "#55a868"), (1, "event", "#c44e52"))


def _save(fig: plt.Figure, out_png: str | Path) -> None:
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=110)
    plt.close(fig)


def top_pcs(matrix: pd.DataFrame, n_genes: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """(first two PCs per sample, their explained variance share) of the most variable genes."""
    top = matrix.loc[:, matrix.var().sort_values(ascending=False).index[:n_genes]]
    centred = (top - top.mean()).to_numpy()
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    k = min(2, len(s))
    pcs = np.zeros((len(top), 2))
    pcs[:, :k] = u[:, :k] * s[:k]
    explained = np.zeros(2)
    explained[:k] = s[:k] ** 2 / max((s**2).sum(), 1e-300)
    return pcs, explained


def plot_normalisation_qc(samples: pd.DataFrame, matrix: pd.DataFrame, clinical: pd.DataFrame,
                          kind: str, out_png: str | Path) -> None:
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    if samples["total"].notna().all():
        lib = samples.set_index("patient")["total"].sort_values()
        scale, unit = (1e6, "M reads") if kind == "counts" else (1.0, kind.upper())
        ax1.bar(range(len(lib)), lib.to_numpy() / scale, color="#4c72b0")
        ax1.set(xlabel="samples (sorted)", ylabel=f"library size ({unit})",
                title="Library sizes" if kind == "counts" else f"Total {kind} per sample")
    else:
        med = matrix.median(axis=1).sort_values()
        ax1.bar(range(len(med)), med.to_numpy(), color="#4c72b0")
        ax1.set(xlabel="samples (sorted)", ylabel=f"median {kind} value",
                title=f"Per-sample median ({kind} input)")
    pcs, explained = top_pcs(matrix)
    event = clinical.loc[matrix.index, "event"].to_numpy()
    for value, label, colour in EVENT_COLOURS:
        sel = event == value
        ax2.scatter(pcs[sel, 0], pcs[sel, 1], s=18, c=colour, label=label)
    ax2.set(xlabel=f"PC1 ({explained[0]:.0%})", ylabel=f"PC2 ({explained[1]:.0%})",
            title="PCA of normalised expression (500 most variable genes)")
    ax2.legend(frameon=False)
    fig.tight_layout()
    _save(fig, out_png)


def plot_pathway_heatmap(scores: pd.DataFrame, clinical: pd.DataFrame, out_png: str | Path,
                         max_sets: int = 60) -> None:
    """Patients (columns: events first, each group by time) x gene sets (rows), each set
    z-scored across patients for display only - the models standardise inside folds."""
    if scores.shape[1] > max_sets:
        scores = scores.loc[:, scores.var().sort_values(ascending=False).index[:max_sets]]
    clin = clinical.loc[scores.index]
    order = clin.sort_values(["event", "time"], ascending=[False, True]).index
    shown = scores.loc[order]
    z = ((shown - shown.mean()) / shown.std(ddof=0).replace(0, 1)).T
    height = max(3.0, 0.16 * z.shape[0] + 1.5)
    fig, (bar, ax) = plt.subplots(2, 1, figsize=(10, height), sharex=True,
                                  gridspec_kw={"height_ratios": [0.35, z.shape[0] / 6 + 1]})
    events = clin.loc[order, "event"].to_numpy()
    bar.imshow(events[None, :], aspect="auto", cmap=matplotlib.colors.ListedColormap(
        [EVENT_COLOURS[0][2], EVENT_COLOURS[1][2]]), vmin=0, vmax=1, interpolation="nearest")
    bar.set_yticks([0], ["event"])
    bar.set_title("Pathway scores per patient (z-scored per set for display; red = event)")
    image = ax.imshow(z.to_numpy(), aspect="auto", cmap="RdBu_r", vmin=-2.5, vmax=2.5,
                      interpolation="nearest")
    labels = [name.removeprefix("HALLMARK_")[:40] for name in z.index]
    ax.set_yticks(range(len(labels)), labels, fontsize=6)
    ax.set_xticks([])
    ax.set_xlabel(f"{z.shape[1]} patients (events first, then censored; each by time)")
    fig.colorbar(image, ax=ax, fraction=0.02, pad=0.01, label="z")
    fig.tight_layout()
    _save(fig, out_png)
