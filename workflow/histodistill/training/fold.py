"""Train one model on one fold and write its checkpoint and predictions.

Honesty rules applied here: the time bins, the patch-feature scaling and the pathway-score
scaling are fitted on the fold's ``train`` patients only; early stopping watches the ``val``
patients only; the ``test`` patients are touched once, for the out-of-fold predictions.
Predictions are written for every patient of the fold with its role, so that evaluation can
draw thresholds (e.g. the median risk for Kaplan-Meier groups) from training patients, never
from the test fold. Models that do not need RNA at inference never receive it in prediction.

Outputs in ``out_dir``: ``model.pt`` (state dict), ``meta.json`` (everything needed to rebuild
and audit the model), ``predictions.tsv``, ``history.tsv``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from histodistill.errors import InputError
from histodistill.io import atomic_path, write_json, write_tsv
from histodistill.models.baselines import ModelDims, RiskModel
from histodistill.models.registry import build_model, model_class
from histodistill.models.survival import bin_cuts, discretise
from histodistill.rna.pathways import load_scores
from histodistill.sheets import patient_slides, read_clinical, read_samples
from histodistill.splits import read_folds
from histodistill.training.data import (
    FeatureBank,
    PatientRecord,
    Standardiser,
    build_records,
    fit_feature_scaler,
    usable_slides,
)
from histodistill.training.loop import Batcher, InputTransform, TrainParams, fit, predict

log = logging.getLogger(__name__)

FEATURE_SCALER_PATCHES = 256  # patches per training patient used to fit the feature scaler


def _scaler_json(s: Standardiser | None) -> dict[str, Any] | None:
    return None if s is None else {"mean": s.mean, "std": s.std}


def _scaler_from(d: dict[str, Any] | None) -> Standardiser | None:
    return None if d is None else Standardiser(np.asarray(d["mean"]), np.asarray(d["std"]))


def load_trained(model_dir: str | Path) -> tuple[RiskModel, InputTransform, dict[str, Any]]:
    """Rebuild a trained model (eval mode), its input transform and metadata."""
    model_dir = Path(model_dir)
    meta = json.loads((model_dir / "meta.json").read_text())
    model = build_model(meta["model"], ModelDims(**meta["dims"]), **meta["train_params"])
    model.load_state_dict(torch.load(model_dir / "model.pt", map_location="cpu",
                                     weights_only=True))
    transform = InputTransform(_scaler_from(meta["feature_scaler"]),
                               _scaler_from(meta["scaler"]), model.info.needs_rna)
    return model.eval(), transform, meta


def _records_by_role(roles: dict[str, list[str]], clinical: pd.DataFrame,
                     slides_of: dict[str, list[str]], pathways: pd.DataFrame,
                     cuts: np.ndarray, needs_rna: bool, needs_wsi: bool
                     ) -> tuple[dict[str, list[PatientRecord]], dict[str, dict[str, int]]]:
    """Records per role; patients a model cannot use (no RNA for an RNA model, no usable
    slide for a WSI model) are skipped and counted per reason and role."""
    records: dict[str, list[PatientRecord]] = {}
    skipped: dict[str, dict[str, int]] = {"without_rna": {}, "without_slides": {}}
    for role, patients in roles.items():
        if needs_rna:
            kept = [p for p in patients if p in pathways.index]
            skipped["without_rna"][role] = len(patients) - len(kept)
            patients = kept
        if needs_wsi:
            kept = [p for p in patients if slides_of.get(p)]
            skipped["without_slides"][role] = len(patients) - len(kept)
            patients = kept
        intervals = discretise(clinical.loc[patients, "time"].to_numpy(), cuts)
        records[role] = build_records(clinical, patients, slides_of, pathways, intervals)
    return records, skipped


def train_fold(model_name: str, fold: int, folds_tsv: str | Path, clinical_tsv: str | Path,
               samples_tsv: str | Path, feature_h5s: list[str], pathways_parquet: str | Path,
               out_dir: str | Path, params: TrainParams, teacher_dir: str | Path | None = None,
               code_version: str = "") -> None:
    out = Path(out_dir)
    info = model_class(model_name).info
    torch.manual_seed(params.seed * 1009 + fold)
    if torch.cuda.is_available():  # CPU kernels used here are deterministic already (tested)
        torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng([params.seed, fold])

    roles = read_folds(folds_tsv, fold)
    clinical = read_clinical(clinical_tsv)
    slides_of = patient_slides(read_samples(samples_tsv, check_files=False))
    pathways = load_scores(pathways_parquet, fold)
    cuts = bin_cuts(clinical.loc[roles["train"], "time"].to_numpy(),
                    clinical.loc[roles["train"], "event"].to_numpy(), params.n_bins)
    excluded = usable_slides(slides_of, feature_h5s) if info.needs_wsi else {}
    records, skipped = _records_by_role(roles, clinical, slides_of, pathways, cuts,
                                        info.needs_rna, info.needs_wsi)
    for reason, counts in skipped.items():
        if any(counts.values()):
            log.warning("%s: skipping patients %s (%s)", model_name, reason.replace("_", " "),
                        ", ".join(f"{k}: {v}" for k, v in counts.items()))
    if not records["train"] or not records["val"]:
        raise InputError(f"fold {fold}: no training or validation patients left for "
                         f"{model_name}")

    with_rna = [r.pathways for r in records["train"] if r.pathways is not None]
    uses_rna = info.needs_rna or info.teacher is not None
    pathway_scaler = Standardiser.fit(np.stack(with_rna)) if uses_rna and with_rna else None
    bank = FeatureBank({Path(p).stem: Path(p) for p in feature_h5s}) if info.needs_wsi else None
    feature_scaler = None
    if bank is not None:
        feature_scaler = fit_feature_scaler(bank, records["train"], FEATURE_SCALER_PATCHES,
                                            np.random.default_rng([params.seed, fold, 1]))
    transform = InputTransform(feature_scaler, pathway_scaler, info.needs_rna)
    batcher = Batcher(bank, params.max_patches, rng)

    feature_dim = len(feature_scaler.mean) if feature_scaler is not None else 0
    dims = ModelDims(feature_dim, len(pathways.columns), len(cuts) + 1, params.hidden,
                     params.dropout)
    model = build_model(model_name, dims, **asdict(params))

    teacher = None
    if info.teacher is not None:
        if teacher_dir is None:
            raise InputError(f"{model_name} distils from {info.teacher}; no teacher given")
        t_model, t_transform, t_meta = load_trained(teacher_dir)
        if t_meta["fold"] != fold or not np.allclose(t_meta["bin_cuts"], cuts):
            raise InputError(f"teacher {teacher_dir} was trained on another fold or split; "
                             "re-run it")
        for p in t_model.parameters():
            p.requires_grad_(False)
        teacher = (t_model, t_transform)

    history, best_epoch = fit(model, records["train"], records["val"], batcher, transform,
                              params, rng, teacher)
    preds = pd.concat([predict(model, records[role], batcher, transform).assign(role=role)
                       for role in ("train", "val", "test")], ignore_index=True)
    preds.insert(0, "fold", fold)
    preds.insert(1, "model", model_name)

    with atomic_path(out / "model.pt") as tmp:
        torch.save(model.state_dict(), tmp)
    write_tsv(out / "predictions.tsv", preds)
    write_tsv(out / "history.tsv", history)
    write_json(out / "meta.json", {
        "model": model_name, "fold": fold, "dims": asdict(dims), "train_params": asdict(params),
        "bin_cuts": cuts.tolist(), "best_epoch": best_epoch,
        "n_patients": {k: len(v) for k, v in records.items()},
        "skipped_without_rna": skipped["without_rna"],
        "skipped_without_slides": skipped["without_slides"], "excluded_slides": excluded,
        "pathways": list(pathways.columns),
        "scaler": _scaler_json(pathway_scaler), "feature_scaler": _scaler_json(feature_scaler),
        "features": {k: (v.item() if hasattr(v, "item") else v)
                     for k, v in (bank.extractor_attrs if bank else {}).items()},
        "teacher": str(teacher_dir) if teacher_dir else None, "code_version": code_version,
    })
    log.info("%s fold %d: best epoch %d, %s", model_name, fold, best_epoch,
             {k: len(v) for k, v in records.items()})
