"""G-HANet across the cohort: how well histology reconstructs each group of the privileged
vector, measured on patients the model never trained on.

For every fold, each *test* patient that has the privileged vector is run once with it: the
group encoders give the targets ``g_k`` and the cross-modal associating branch, from patches
only, the reconstructions ``r_k``. Per group: the mean cosine similarity and MSE between
``r_k`` and ``g_k`` over those out-of-fold patients, with the group's members.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from histodistill.errors import InputError  # noqa: E402
from histodistill.io import atomic_path, write_tsv  # noqa: E402
from histodistill.rna.gene_columns import SEP  # noqa: E402
from histodistill.rna.pathways import load_scores  # noqa: E402
from histodistill.sheets import patient_slides, read_clinical, read_samples  # noqa: E402
from histodistill.training.data import FeatureBank, usable_slides  # noqa: E402
from histodistill.training.fold import load_trained  # noqa: E402
from histodistill.training.loop import RawBag  # noqa: E402
from histodistill.training.privileged import Privileged  # noqa: E402

log = logging.getLogger(__name__)


def reconstruction_by_patient(prediction_files: list[str | Path], clinical_tsv: str | Path,
                              samples_tsv: str | Path, feature_h5s: list[str],
                              pathways_parquet: str | Path) -> pd.DataFrame:
    """One row per (out-of-fold patient, group): fold, patient, group, cosine, mse."""
    clinical = read_clinical(clinical_tsv)
    slides_of = patient_slides(read_samples(samples_tsv, check_files=False))
    usable_slides(slides_of, feature_h5s)
    bank = FeatureBank({Path(p).stem: Path(p) for p in feature_h5s}, cache_mb=0)
    rows = []
    for f in prediction_files:
        model, transform, meta = load_trained(Path(f).parent)
        if "groups" not in meta.get("structure", {}):
            raise InputError(f"{Path(f).with_name('meta.json')}: not a G-HANet model")
        fold = int(meta["fold"])
        priv = Privileged(**meta["privileged"]).table(load_scores(pathways_parquet, fold),
                                                      clinical, clinical_tsv)
        if list(priv.columns) != meta["pathways"]:
            raise InputError(f"{f}: the privileged vector changed since training; re-run train")
        preds = pd.read_csv(f, sep="\t", dtype={"patient": str})
        test = [p for p in preds.loc[preds["role"] == "test", "patient"]
                if p in priv.index and slides_of.get(p)]
        for patient in test:
            raw = RawBag(bank.bag(slides_of[patient]), priv.loc[patient].to_numpy())
            with torch.no_grad():
                out = model(transform(raw, train=True))
            r, g = out.extras["reconstruction"], out.extras["genomic"]
            cos = F.cosine_similarity(r, g, dim=1).numpy()
            mse = ((r - g) ** 2).mean(dim=1).numpy()
            rows += [{"fold": fold, "patient": patient, "group": k + 1, "cosine": float(cos[k]),
                      "mse": float(mse[k])} for k in range(len(cos))]
    return pd.DataFrame(rows, columns=["fold", "patient", "group", "cosine", "mse"])


def group_members(prediction_files: list[str | Path]) -> dict[int, dict[int, list[str]]]:
    """fold -> group number -> its members (names of the privileged vector); a group of a
    gene-level vector is its gene set, named once with its number of genes."""
    out = {}
    for f in prediction_files:
        meta = json.loads(Path(f).with_name("meta.json").read_text(encoding="utf-8"))
        out[int(meta["fold"])] = {k + 1: _named([meta["pathways"][i] for i in idx])
                                  for k, idx in enumerate(meta["structure"]["groups"])}
    return out


def _named(members: list[str]) -> list[str]:
    sets = {m.rpartition(SEP)[0] for m in members}
    if len(sets) == 1 and all(SEP in m for m in members):
        return [f"{sets.pop()} ({len(members)} genes)"]
    return members


def ghanet_summary(prediction_files: list[str | Path], clinical_tsv: str | Path,
                   samples_tsv: str | Path, feature_h5s: list[str],
                   pathways_parquet: str | Path, out_tsv: str | Path, out_png: str | Path
                   ) -> pd.DataFrame:
    """Per fold and group: members, out-of-fold patients, mean/SD cosine and mean MSE.

    Groups are clustered within each fold, so group k of one fold is not group k of another:
    the table and plot are per fold."""
    per_patient = reconstruction_by_patient(prediction_files, clinical_tsv, samples_tsv,
                                            feature_h5s, pathways_parquet)
    members = group_members(prediction_files)
    table = (per_patient.groupby(["fold", "group"])
             .agg(n_patients=("patient", "size"), cosine_mean=("cosine", "mean"),
                  cosine_sd=("cosine", "std"), mse_mean=("mse", "mean")).reset_index())
    table["members"] = [", ".join(members[f][g]) for f, g in zip(table["fold"], table["group"],
                                                                  strict=True)]
    log.info("G-HANet: %d folds x groups, %d out-of-fold patients; cosine per group %.3f to "
             "%.3f", len(table), per_patient["patient"].nunique(), table["cosine_mean"].min(),
             table["cosine_mean"].max())
    write_tsv(out_tsv, table)
    plot_ghanet(table, out_png)
    return table


def plot_ghanet(table: pd.DataFrame, out_png: str | Path) -> None:
    labels = [f"fold {f} g{g}: " + (m if len(m) < 40 else m[:37] + "...")
              for f, g, m in zip(table["fold"], table["group"], table["members"], strict=True)]
    y = np.arange(len(table))[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.8 + 0.28 * len(table)))
    ax.barh(y, table["cosine_mean"], xerr=table["cosine_sd"].fillna(0), color="#8172b2",
            capsize=2)
    ax.axvline(0, color="#999999", lw=1)
    ax.set(yticks=y, yticklabels=labels, xlim=(-1, 1),
           xlabel="cosine(reconstruction from histology, group encoding), out-of-fold patients")
    ax.tick_params(axis="y", labelsize=7)
    fig.suptitle("G-HANet: reconstructibility of each group of the privileged vector",
                 fontsize=10)
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)
