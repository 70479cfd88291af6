"""Where the histology-only models look: attention maps of the highest- and lowest-risk
out-of-fold patients.

Each patient is drawn with the model of the fold in which it was a *test* patient, on every
patch of its slides and without the privileged vector (exactly the inference path). Per slide
the output folder holds ``{model}_{group}{rank}_{slide}_overlay.jpg`` (thumbnail with the
attention, plus MoPE's most used experts or G-HANet's gene-group maps),
``..._top_patches.jpg`` (the most attended patches at full resolution) and
``..._attention.geojson`` (every patch with every map as a QuPath measurement); ``index.tsv``
lists them.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
import torch

from histodistill.errors import InputError
from histodistill.evaluation.evaluate import read_predictions
from histodistill.evaluation.heatmaps import (
    SlidePatches,
    attention_geojson,
    overlay_jpg,
    top_patches_jpg,
)
from histodistill.io import write_tsv
from histodistill.models.base import Outputs
from histodistill.sheets import patient_slides, read_samples
from histodistill.training.data import usable_slides
from histodistill.training.fold import load_trained
from histodistill.training.loop import RawBag
from histodistill.training.task import Task

log = logging.getLogger(__name__)

INDEX_COLUMNS = ["model", "group", "rank", "patient", "fold", "risk", "slide", "n_patches",
                 "top_patches", "stem"]
OVERLAY_EXTRA_MAPS = 5  # expert / group panels drawn besides the attention (all go to GeoJSON)


def select_patients(test: pd.DataFrame, n: int) -> pd.DataFrame:
    """The ``n`` highest- and ``n`` lowest-risk test patients (no patient twice)."""
    ranked = test.sort_values(["risk", "patient"], ascending=[False, True])
    high = ranked.head(n).assign(group="high")
    low = ranked.iloc[len(high):].tail(n).iloc[::-1].assign(group="low")
    out = pd.concat([high, low], ignore_index=True)
    out["rank"] = out.groupby("group").cumcount() + 1
    return out[["group", "rank", "patient", "fold", "risk"]]


def read_patches(slide_id: str, h5_path: str | Path, slide_path: Path
                 ) -> tuple[SlidePatches, np.ndarray]:
    with h5py.File(h5_path, "r") as f:
        if "coords" not in f or "features" not in f:
            raise InputError(f"{h5_path}: no coords/features; re-run extract_features")
        coords = f["coords"][:].astype(np.int64)
        size0 = int(f["coords"].attrs["patch_size_level0"])
        feats = f["features"][:]
    return SlidePatches(slide_id, slide_path, coords, size0), feats


def patient_maps(model: torch.nn.Module, transform, feats: np.ndarray, meta: dict
                 ) -> tuple[dict[str, np.ndarray], list[str], float]:
    """Every attention map of one bag (name -> (N,)), the names to draw, and the risk."""
    with torch.no_grad():
        out = model(transform(RawBag(feats, None)))
    maps, drawn = mean_maps([out], meta["pathways"], meta["model"])
    return maps, drawn, Task(**meta["task"]).prediction(out.logits)["risk"]


def mean_maps(outs: list[Outputs], pathways: list[str], model_name: str
              ) -> tuple[dict[str, np.ndarray], list[str]]:
    """The maps of one bag, averaged over ``outs`` (one model's outputs, or every member of a
    final model's): the attention, MoPE's one map per pathway expert (the most used drawn),
    G-HANet's one map per group of the privileged vector; and the names to draw."""
    if any(o.attention is None for o in outs):
        raise InputError(f"{model_name} has no patch attention to draw")

    def mean(get) -> np.ndarray:
        return np.mean([get(o).cpu().numpy() for o in outs], axis=0)

    maps = {"attention": mean(lambda o: o.attention)}
    drawn = ["attention"]
    extras = outs[0].extras
    if "expert_attention" in extras:  # MoPE: one map per pathway expert
        usage, experts = mean(lambda o: o.extras["usage"]), \
            mean(lambda o: o.extras["expert_attention"])
        for p, name in enumerate(pathways):
            maps[f"expert:{name}"] = experts[p]
        top = np.argsort(-usage, kind="stable")[:OVERLAY_EXTRA_MAPS]
        drawn += [f"expert:{pathways[p]}" for p in top]
    if "group_attention" in extras:  # G-HANet: one map per group of the privileged vector
        groups = mean(lambda o: o.extras["group_attention"])
        for g in range(len(groups)):
            maps[f"group:{g + 1}"] = groups[g]
        drawn += [f"group:{g + 1}" for g in range(min(len(groups), OVERLAY_EXTRA_MAPS))]
    return maps, drawn


def draw_patient(model_name: str, pick: Any, slides: list[tuple[SlidePatches, np.ndarray]],
                 maps: dict[str, np.ndarray], drawn: list[str], out: Path,
                 source: str) -> list[dict[str, Any]]:
    """One patient's overlay, top patches and GeoJSON per slide (``pick``: group, rank,
    patient, fold, risk; ``source``: which model drew it, for the titles); index rows."""
    rows = []
    start = 0
    for patches, feats in slides:
        part = slice(start, start + len(feats))
        start += len(feats)
        slide_maps = {k: v[part] for k, v in maps.items()}
        stem = f"{model_name}_{pick.group}{pick.rank}_{patches.slide_id}"
        title = (f"{model_name}, {source}: {pick.group}-risk #{pick.rank} "
                 f"{pick.patient} (risk {pick.risk:.3g}), slide {patches.slide_id}")
        overlay_jpg(patches, {k: slide_maps[k] for k in drawn}, title,
                    out / f"{stem}_overlay.jpg")
        top = top_patches_jpg(patches, slide_maps["attention"], title,
                              out / f"{stem}_top_patches.jpg")
        attention_geojson(patches, slide_maps,
                          {"model": model_name, "patient": pick.patient, "fold": pick.fold,
                           "risk_group": pick.group, "risk": float(pick.risk)},
                          out / f"{stem}_attention.geojson")
        rows.append({"model": model_name, "group": pick.group, "rank": pick.rank,
                     "patient": pick.patient, "fold": pick.fold, "risk": pick.risk,
                     "slide": patches.slide_id, "n_patches": len(feats),
                     "top_patches": ",".join(map(str, top)), "stem": stem})
    return rows


def in_folder(out_dir: str | Path, write: Callable[[Path], pd.DataFrame]) -> pd.DataFrame:
    """``write(tmp)`` into a temporary folder beside ``out_dir``, moved into place whole."""
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(f".{out_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        index = write(tmp)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return index


def attention(model_name: str, prediction_files: list[str], samples_tsv: str | Path,
              feature_h5s: list[str], out_dir: str | Path, n_patients: int) -> pd.DataFrame:
    """Maps of the ``n_patients`` highest- and lowest-risk patients into ``out_dir`` (written
    to a temporary folder and moved into place whole)."""
    return in_folder(out_dir, lambda tmp: _write_all(model_name, prediction_files, samples_tsv,
                                                     feature_h5s, tmp, n_patients))


def _write_all(model_name: str, prediction_files: list[str], samples_tsv: str | Path,
               feature_h5s: list[str], out: Path, n_patients: int) -> pd.DataFrame:
    per_fold = {Path(f).parent: read_predictions([f]) for f in prediction_files}
    dirs = {int(df["fold"].iat[0]): d for d, df in per_fold.items()}
    preds = pd.concat(per_fold.values(), ignore_index=True)
    chosen = select_patients(preds[preds["role"] == "test"], n_patients)
    samples = read_samples(samples_tsv, check_files=False)
    slides_of = patient_slides(samples)
    usable_slides(slides_of, feature_h5s)
    h5_of = {Path(p).stem: p for p in feature_h5s}
    trained = {}
    rows = []
    for pick in chosen.itertuples(index=False):
        fold = int(pick.fold)
        if fold not in trained:
            trained[fold] = load_trained(dirs[fold])
        model, transform, meta = trained[fold]
        slides = [read_patches(s, h5_of[s], samples[s].path) for s in slides_of[pick.patient]]
        if not slides:
            raise InputError(f"patient {pick.patient} has no usable slide to draw")
        maps, drawn, risk = patient_maps(model, transform,
                                         np.concatenate([f for _, f in slides]), meta)
        if not np.isclose(risk, pick.risk, rtol=1e-4, atol=1e-5):
            raise InputError(f"{model_name} fold {pick.fold}: patient {pick.patient} gets risk "
                             f"{risk:.6g} now but {pick.risk:.6g} in predictions.tsv; the model "
                             "or features changed - re-run train")
        rows += draw_patient(model_name, pick._replace(fold=fold), slides, maps, drawn, out,
                             f"fold {fold}")
    index = pd.DataFrame(rows, columns=INDEX_COLUMNS)
    write_tsv(out / "index.tsv", index)
    log.info("%s: attention maps of %d patients, %d slides", model_name, len(chosen), len(rows))
    return index
