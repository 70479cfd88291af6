"""MoPE across the cohort: which pathway experts the student uses, and how well histology
reconstructs each pathway.

* usage: mean of the out-of-fold ``usage:{pathway}`` columns of test patients, overall and in
  the high/low risk groups (training-median threshold, as for the Kaplan-Meier curves);
* the teacher's usage beside it (mean over its test patients, who all have RNA): where the
  student's usage target came from. A teacher that reads the slide puts its usage where RNA
  adds to histology, so the two differ by design when ``train.usage_target`` is
  ``reconstructible``;
* reconstructibility: the cross-validated ridge R^2 from mean patch features to each pathway,
  fitted on each fold's training patients (``meta.json`` structure), mean and SD over folds.
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

from histodistill.errors import InputError  # noqa: E402
from histodistill.evaluation.evaluate import read_predictions  # noqa: E402
from histodistill.evaluation.km import risk_groups  # noqa: E402
from histodistill.io import atomic_path, write_tsv  # noqa: E402

log = logging.getLogger(__name__)

SHOWN = 15  # pathways in the plot


def _usage_columns(preds: pd.DataFrame, source: str | Path) -> list[str]:
    cols = [c for c in preds.columns if c.startswith("usage:")]
    if not cols:
        raise InputError(f"{source}: no usage:* columns; is this a MoPE model?")
    return cols


def mope_table(prediction_files: list[str | Path],
               teacher_files: list[str | Path] | None = None) -> pd.DataFrame:
    preds = read_predictions(prediction_files)
    cols = _usage_columns(preds, prediction_files[0])
    test = risk_groups(preds)
    names = [c.removeprefix("usage:") for c in cols]
    recon = []
    for f in prediction_files:
        meta = json.loads(Path(f).with_name("meta.json").read_text(encoding="utf-8"))
        weights = meta.get("structure", {}).get("reconstructibility")
        if weights is None or meta["pathways"] != names:
            raise InputError(f"{Path(f).with_name('meta.json')}: no reconstructibility for "
                             "the pathways of its predictions; re-run train")
        recon.append(weights)
    r = np.asarray(recon, dtype=np.float64)
    table = pd.DataFrame({
        "pathway": names,
        "usage_mean": test[cols].mean().to_numpy(),
        "usage_high_risk": test.loc[test["high_risk"], cols].mean().to_numpy(),
        "usage_low_risk": test.loc[~test["high_risk"], cols].mean().to_numpy(),
        "reconstructibility_mean": r.mean(axis=0),
        "reconstructibility_sd": r.std(axis=0, ddof=1) if len(r) > 1 else np.nan,
    })
    if teacher_files:
        teacher = read_predictions(teacher_files)
        if _usage_columns(teacher, teacher_files[0]) != cols:
            raise InputError(f"{teacher_files[0]}: the teacher's pathways differ from the "
                             f"student's ({prediction_files[0]}); re-run train")
        table["teacher_usage_mean"] = teacher.loc[teacher["role"] == "test", cols].mean()\
            .to_numpy()
    return table.sort_values("usage_mean", ascending=False, ignore_index=True)


def plot_mope(table: pd.DataFrame, out_png: str | Path) -> None:
    top = table.head(SHOWN).iloc[::-1]
    y = np.arange(len(top))
    fig, (ax_u, ax_r) = plt.subplots(1, 2, figsize=(10, 0.8 + 0.32 * len(top)), sharey=True)
    ax_u.barh(y - 0.2, top["usage_high_risk"], 0.4, color="#c44e52", label="high risk")
    ax_u.barh(y + 0.2, top["usage_low_risk"], 0.4, color="#4c72b0", label="low risk")
    if "teacher_usage_mean" in top:
        ax_u.scatter(top["teacher_usage_mean"], y, marker="|", s=120, color="black", zorder=3,
                     label="teacher")
    ax_u.axvline(1 / len(table), color="#999999", ls="--", lw=1, label="uniform")
    ax_u.set(yticks=y, yticklabels=[p.removeprefix("HALLMARK_") for p in top["pathway"]],
             xlabel="mean expert usage (out-of-fold)")
    ax_u.legend(fontsize=7, frameon=False)
    ax_r.barh(y, top["reconstructibility_mean"], xerr=top["reconstructibility_sd"],
              color="#55a868", capsize=2)
    ax_r.axvline(0, color="#999999", lw=1)
    ax_r.set(xlabel="reconstructibility from histology (CV ridge R², mean ± SD over folds)")
    fig.suptitle(f"MoPE: the {len(top)} most used of {len(table)} pathway experts", fontsize=10)
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=100)
    plt.close(fig)


def mope_summary(prediction_files: list[str | Path], out_tsv: str | Path,
                 out_png: str | Path, teacher_files: list[str | Path] | None = None
                 ) -> pd.DataFrame:
    table = mope_table(prediction_files, teacher_files)
    top = table.iloc[0]
    log.info("MoPE: %d pathway experts; most used %s (usage %.3f, uniform %.3f; "
             "reconstructibility R^2 %.3f)", len(table), top["pathway"], top["usage_mean"],
             1 / len(table), top["reconstructibility_mean"])
    write_tsv(out_tsv, table)
    plot_mope(table, out_png)
    return table
