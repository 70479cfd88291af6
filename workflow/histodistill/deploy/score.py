"""Scoring a cohort that has only slides with a final model (a bundle).

Every feature file is checked against the bundle first: the extractor's name and the sha256
of its weights, the feature dimension, the tile size in micrometres and pixels. A mismatch is
refused with the bundle, the slide and both values named: features of another encoder would
give risks with no meaning, and nothing would say so.

A patient is scored from every patch of all of their slides (the bag the cross-validation
scored). A patient one of whose slides failed (``wsi.on_slide_error: exclude``) or has no
tissue tile is **not scored** (a partial bag is a different input than the model was
validated on): the row says ``not_scored`` and why, its risk is empty, and the log lists it.

``predictions/{name}.tsv`` columns: patient, status (scored / not_scored), reason, n_slides,
n_patches, risk, risk_group (the training cohort's threshold: high / low, or positive /
negative), then ``surv_{j}`` (survival at the bundle's ``survival_times``) and, for MoPE,
``usage:{pathway}``. The attention folder holds the maps of the ``n_patients`` highest- and
lowest-risk scored patients, drawn with the final model (the mean of its members' maps), as
the attention rule draws them for a trained cohort; a model without learnt attention
(wsi_meanpool weighs every patch equally) gets an empty index.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd

from histodistill.deploy.bundle import FinalModel
from histodistill.errors import InputError
from histodistill.evaluation.attention import (
    INDEX_COLUMNS,
    draw_patient,
    in_folder,
    mean_maps,
    read_patches,
    select_patients,
)
from histodistill.io import write_tsv
from histodistill.models.catalog import CATALOG
from histodistill.sheets import patient_slides, read_samples
from histodistill.wsi.status import FAILED, h5_status

log = logging.getLogger(__name__)

BASE_COLUMNS = ["patient", "status", "reason", "n_slides", "n_patches", "risk", "risk_group"]


def check_features(final: FinalModel, slide: str, h5_path: str | Path) -> None:
    """Refuse a feature file that does not come from the bundle's extractor and tiling."""
    m = final.manifest
    with h5py.File(h5_path, "r") as f:
        coords = f["coords"].attrs if "coords" in f else {}
        found = {
            "extractor": str(f.attrs.get("extractor", "?")),
            "extractor weights sha256": str(f.attrs.get("weights_sha256", "?")),
            "feature dimension": int(f["features"].shape[1]) if "features" in f
            and f["features"].ndim == 2 else -1,
            "tile size (um)": float(coords.get("patch_size_um", float("nan"))),
            "tile size (px)": int(coords.get("patch_size", -1)),
        }
    wanted = {
        "extractor": m["extractor"]["name"],
        "extractor weights sha256": m["extractor"]["weights_sha256"],
        "feature dimension": m["extractor"]["dim"],
        "tile size (um)": float(m["tiling"]["patch_um"]),
        "tile size (px)": int(m["tiling"]["patch_px"]),
    }
    for key, value in wanted.items():
        got = found[key]
        same = np.isclose(got, value, rtol=1e-6) if isinstance(value, float) else got == value
        if not same:
            raise InputError(
                f"model bundle {final.path} cannot score slide {slide!r} ({h5_path}): its "
                f"features have {key} {got!r}, the bundle was trained on {value!r}. Extract "
                "this cohort's features with the bundle's extractor, weights and tiling "
                "(features.extractor, features.weights, wsi.tiling in the config)")


def _bag(slides: list[str], h5_of: dict[str, str], failed: dict[str, str]
         ) -> tuple[np.ndarray | None, str]:
    """The patient's whole bag, or None and why it is not scored."""
    bad = [f"slide {s} failed ({failed[s]})" for s in slides if s in failed]
    if bad:
        return None, "; ".join(bad) + ": not scored from a partial bag"
    parts = []
    for s in slides:
        with h5py.File(h5_of[s], "r") as f:
            parts.append(f["features"][:])
    empty = [s for s, p in zip(slides, parts, strict=True) if len(p) == 0]
    if empty:
        return None, f"slide(s) {', '.join(empty)} have no tissue tile: not scored"
    return np.concatenate(parts, axis=0), ""


def score_cohort(bundle: str | Path, name: str, samples_tsv: str | Path,
                 feature_h5s: list[str], out_tsv: str | Path, attention_dir: str | Path,
                 n_patients: int, min_tissue_fraction: float | None = None) -> pd.DataFrame:
    """Score every patient of ``samples_tsv`` with the bundle; write predictions and maps.
    ``min_tissue_fraction``: the scored cohort's tiling threshold (a difference from the
    bundle's is logged: it changes which tiles a bag holds)."""
    final = FinalModel(bundle)
    if min_tissue_fraction is not None and not np.isclose(
            min_tissue_fraction, final.manifest["tiling"]["min_tissue_fraction"]):
        log.warning("%s: tiles kept at tissue fraction >= %g here, >= %g in the training "
                    "cohort; bags differ from those the model was validated on", name,
                    min_tissue_fraction, final.manifest["tiling"]["min_tissue_fraction"])
    samples = read_samples(samples_tsv, check_files=False)
    h5_of = {Path(p).stem: str(p) for p in feature_h5s}
    missing = sorted(set(samples) - set(h5_of))
    if missing:
        raise InputError(f"{samples_tsv}: no feature file for slide(s) {missing[:5]}; re-run "
                         "extract_features")
    failed = {}
    for slide in sorted(samples):
        status, reason = h5_status(h5_of[slide])
        if status == FAILED:
            failed[slide] = reason
        else:
            check_features(final, slide, h5_of[slide])
    rows: list[dict[str, Any]] = []
    for patient, slides in patient_slides(samples).items():
        feats, reason = _bag(slides, h5_of, failed)
        row: dict[str, Any] = {"patient": patient, "status": "not_scored", "reason": reason,
                               "n_slides": len(slides),
                               "n_patches": 0 if feats is None else len(feats),
                               "risk": np.nan, "risk_group": ""}
        if feats is not None:
            pred = final.predict(feats)
            row.update(status="scored", risk_group=final.group(pred["risk"]), **pred)
        rows.append(row)
    preds = pd.DataFrame(rows)
    extra = [c for c in preds.columns if c not in BASE_COLUMNS]
    preds = preds[BASE_COLUMNS + extra]
    not_scored = preds[preds["status"] != "scored"]
    if len(not_scored):
        log.warning("%s: %d of %d patients not scored: %s", name, len(not_scored), len(preds),
                    "; ".join(f"{r.patient}: {r.reason}" for r in not_scored.itertuples()))
    write_tsv(out_tsv, preds)
    in_folder(attention_dir, lambda tmp: _draw(final, name, preds, samples, h5_of, tmp,
                                               n_patients))
    log.info("%s: %d patients scored with %s (%s); %d high / positive", name,
             int((preds["status"] == "scored").sum()), final.path, final.name,
             int(preds["risk_group"].isin(["high", "positive"]).sum()))
    return preds


def _draw(final: FinalModel, name: str, preds: pd.DataFrame, samples: dict, h5_of: dict,
          out: Path, n_patients: int) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    info = CATALOG.get(final.name)
    if info is not None and info.direct:
        log.info("%s weighs every patch equally: no attention map to draw", final.name)
    else:
        scored = preds[preds["status"] == "scored"].assign(fold="final")
        slides_of = patient_slides(samples)
        for pick in select_patients(scored, n_patients).itertuples(index=False):
            slides = [read_patches(s, h5_of[s], samples[s].path) for s in slides_of[pick.patient]]
            outs = final.outputs(np.concatenate([f for _, f in slides]))
            maps, drawn = mean_maps(outs, final.members[0].pathways, name)
            rows += draw_patient(name, pick, slides, maps, drawn, out, "final model")
    index = pd.DataFrame(rows, columns=INDEX_COLUMNS)
    write_tsv(out / "index.tsv", index)
    return index
