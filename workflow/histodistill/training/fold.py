"""Train one model on one fold and write its checkpoint and predictions.

Honesty rules applied here: the time bins, the patch-feature scaling, the privileged-vector
scaling, G-HANet's groups and MoPE's reconstructibility weights are fitted on the fold's
``train`` patients only; early stopping watches the ``val``
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
import os
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from histodistill.device import resolve_device
from histodistill.errors import InputError
from histodistill.io import atomic_path, write_json, write_tsv
from histodistill.models.base import ModelDims, RiskModel
from histodistill.models.catalog import check_privileged
from histodistill.models.registry import build_model, model_class
from histodistill.models.survival import bin_cuts, discretise
from histodistill.rna.pathways import load_scores
from histodistill.sheets import patient_slides, read_clinical, read_samples
from histodistill.splits import read_folds
from histodistill.training.candidate import Fitting, bag_agreement, permute_privileged
from histodistill.training.data import (
    FeatureBank,
    PatientRecord,
    Standardiser,
    build_records,
    fit_feature_scaler,
    usable_slides,
)
from histodistill.training.loop import InputTransform, TrainParams, predict
from histodistill.training.privileged import Privileged
from histodistill.training.task import Task
from histodistill.training.tuning import TuneParams, candidates

log = logging.getLogger(__name__)

FEATURE_SCALER_PATCHES = 256  # patches per training patient used to fit the feature scaler


def _scaler_json(s: Standardiser | None) -> dict[str, Any] | None:
    return None if s is None else {"mean": s.mean, "std": s.std}


def _scaler_from(d: dict[str, Any] | None) -> Standardiser | None:
    return None if d is None else Standardiser(np.asarray(d["mean"]), np.asarray(d["std"]))


def rebuild_model(name: str, dims: dict[str, Any], train_params: dict[str, Any],
                  structure: dict[str, Any], state: dict[str, torch.Tensor]) -> RiskModel:
    """A trained model from what meta.json (or a bundle's manifest) records and its weights,
    in eval mode."""
    model = build_model(name, ModelDims(**dims), **{**train_params, **structure})
    model.load_state_dict(state)
    return model.eval()


def load_trained(model_dir: str | Path) -> tuple[RiskModel, InputTransform, dict[str, Any]]:
    """Rebuild a trained model (eval mode), its input transform and metadata."""
    model_dir = Path(model_dir)
    meta = json.loads((model_dir / "meta.json").read_text())
    model = rebuild_model(meta["model"], meta["dims"], meta["train_params"],
                          meta.get("structure", {}),
                          torch.load(model_dir / "model.pt", map_location="cpu",
                                     weights_only=True))
    info = model.info
    transform = InputTransform(_scaler_from(meta["feature_scaler"]), _scaler_from(meta["scaler"]),
                               info.needs_rna or info.privileged, info.needs_rna)
    return model.eval(), transform, meta


def _records_by_role(roles: dict[str, list[str]], clinical: pd.DataFrame,
                     slides_of: dict[str, list[str]], privileged: pd.DataFrame,
                     cuts: np.ndarray, labels: pd.Series | None, needs_rna: bool,
                     needs_wsi: bool
                     ) -> tuple[dict[str, list[PatientRecord]], dict[str, dict[str, int]]]:
    """Records per role; patients a model cannot use (no privileged vector for an RNA model,
    no usable slide for a WSI model, no label for a binary task) are skipped and counted per
    reason and role."""
    records: dict[str, list[PatientRecord]] = {}
    skipped: dict[str, dict[str, int]] = {"without_rna": {}, "without_slides": {},
                                          "without_label": {}}
    for role, patients in roles.items():
        checks = [("without_label", labels is not None,
                   lambda p: not np.isnan(labels.at[p])),  # type: ignore[union-attr]
                  ("without_rna", needs_rna, lambda p: p in privileged.index),
                  ("without_slides", needs_wsi, lambda p: bool(slides_of.get(p)))]
        for reason, active, keep in checks:
            if active:
                kept = [p for p in patients if keep(p)]
                skipped[reason][role] = len(patients) - len(kept)
                patients = kept
        intervals = discretise(clinical.loc[patients, "time"].to_numpy(), cuts)
        records[role] = build_records(clinical, patients, slides_of, privileged, intervals,
                                      labels)
    return records, skipped


def _load_teacher(teacher_dir: str | Path | None, name: str, teacher: str, fold: int,
                  cuts: np.ndarray, columns: list[str]) -> tuple[RiskModel, InputTransform]:
    if teacher_dir is None:
        raise InputError(f"{name} distils from {teacher}; no teacher given")
    t_model, t_transform, t_meta = load_trained(teacher_dir)
    if t_meta["fold"] != fold or len(t_meta["bin_cuts"]) != len(cuts) or \
            not np.allclose(t_meta["bin_cuts"], cuts) or t_meta["pathways"] != columns:
        raise InputError(f"teacher {teacher_dir} was trained on another fold, split, task or "
                         "privileged vector; re-run it")
    for p in t_model.parameters():
        p.requires_grad_(False)
    return t_model, t_transform


def train_fold(model_name: str, fold: int, folds_tsv: str | Path, clinical_tsv: str | Path,
               samples_tsv: str | Path, feature_h5s: list[str],
               pathways_parquet: str | Path | None, out_dir: str | Path, params: TrainParams,
               teacher_dir: str | Path | None = None,
               code_version: str = "", task: Task | None = None,
               privileged: Privileged | None = None, tune: TuneParams | None = None) -> None:
    """``tune``: the search inside the fold (training/tuning.py); by default the configured
    ``params`` alone."""
    out = Path(out_dir)
    task = task or Task()
    privileged = privileged or Privileged()
    info = model_class(model_name).info
    check_privileged([model_name], privileged.gene_level)
    device = resolve_device(params.device, "train.device")
    if device.type == "cuda":  # CPU kernels used here are deterministic already (tested)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)

    roles = read_folds(folds_tsv, fold)
    clinical = read_clinical(clinical_tsv)
    slides_of = patient_slides(read_samples(samples_tsv, check_files=False))
    if info.uses_rna:
        if pathways_parquet is None:
            raise InputError(f"{model_name} reads the privileged vector: give its pathway table")
        priv = privileged.table(load_scores(pathways_parquet, fold), clinical, clinical_tsv)
    else:  # a model that never sees RNA does not depend on (or re-train for) the RNA table
        priv = pd.DataFrame(index=pd.Index([], name=clinical.index.name))
    labels = task.labels(clinical, clinical_tsv) if task.type == "binary" else None
    train_ids = roles["train"]
    cuts = np.array([])
    if task.type == "survival":
        cuts = bin_cuts(clinical.loc[train_ids, "time"].to_numpy(),
                        clinical.loc[train_ids, "event"].to_numpy(), params.n_bins)
    excluded = usable_slides(slides_of, feature_h5s) if info.needs_wsi else {}
    records, skipped = _records_by_role(roles, clinical, slides_of, priv, cuts, labels,
                                        info.needs_rna, info.needs_wsi)
    for reason, counts in skipped.items():
        if any(counts.values()):
            log.warning("%s: skipping patients %s (%s)", model_name, reason.replace("_", " "),
                        ", ".join(f"{k}: {v}" for k, v in counts.items()))
    if not records["train"] or not records["val"]:
        raise InputError(f"fold {fold}: no training or validation patients left for "
                         f"{model_name}")
    if info.control == "permuted":
        records = permute_privileged(records, np.random.default_rng([params.seed, fold, 2]))
    without_priv = {role: sum(r.pathways is None for r in recs)
                    for role, recs in records.items()}
    if info.uses_rna and not info.needs_rna and any(without_priv.values()):
        log.warning("%s: patients without the privileged vector get the task loss only (%s)",
                    model_name, ", ".join(f"{k}: {v}" for k, v in without_priv.items()))

    with_rna = [r.pathways for r in records["train"] if r.pathways is not None]
    pathway_scaler = Standardiser.fit(np.stack(with_rna)) if info.uses_rna and with_rna \
        else None
    if info.needs_rna and pathway_scaler is None:
        raise InputError(f"fold {fold}: no training patient has the privileged vector")
    bank = FeatureBank({Path(p).stem: Path(p) for p in feature_h5s}, params.cache_mb) \
        if info.needs_wsi else None
    feature_scaler = None
    if bank is not None:
        feature_scaler = fit_feature_scaler(bank, records["train"], FEATURE_SCALER_PATCHES,
                                            np.random.default_rng([params.seed, fold, 1]))
    transform = InputTransform(feature_scaler, pathway_scaler, info.needs_rna or info.privileged,
                               info.needs_rna, device)
    teacher = None
    if info.teacher is not None:
        t_model, t_transform = _load_teacher(teacher_dir, model_name, info.teacher, fold, cuts,
                                             list(priv.columns))
        teacher = (t_model.to(device), replace(t_transform, device=device))

    fitted = Fitting(model_name, fold, records, bank, feature_scaler, pathway_scaler,
                      transform, teacher, task, cuts, len(priv.columns), device,
                      list(priv.columns) if privileged.gene_level else None)
    tune = tune or TuneParams()
    tried = candidates(tune, info.base or model_name, fold, not info.direct, asdict(params))
    trials, best, chosen = [], None, 0
    for i, cand in enumerate(tried):
        result = fitted.train(replace(params, **cand))
        trials.append({"params": cand,
                       "val_score": result.score if np.isfinite(result.score) else None,
                       "val_task_loss": result.val_loss, "best_epoch": result.best_epoch})
        log.info("%s fold %d candidate %d/%d %s: val %s %.4f", model_name, fold, i + 1,
                 len(tried), cand or "(configured values)", fitted.criterion, result.score)
        if best is None or result.score > best.score + 1e-12:
            best, chosen = result, i
    assert best is not None
    if not np.isfinite(best.score):
        log.warning("%s fold %d: the inner validation %s is undefined (no event or one class); "
                    "keeping the configured values", model_name, fold, fitted.criterion)
    params, model, batcher, dims = best.params, best.model, best.batcher, best.dims
    history, best_epoch = best.history, best.best_epoch
    preds = pd.concat([predict(model, records[role], batcher, transform, task,
                               list(priv.columns)).assign(role=role)
                       for role in ("train", "val", "test")], ignore_index=True)
    preds.insert(0, "fold", fold)
    preds.insert(1, "model", model_name)
    agreement = bag_agreement(model, records["val"], bank, params, transform, task, fold)

    with atomic_path(out / "model.pt") as tmp:
        torch.save({k: v.cpu() for k, v in model.state_dict().items()}, tmp)
    write_tsv(out / "predictions.tsv", preds)
    write_tsv(out / "history.tsv", history)
    write_json(out / "meta.json", {
        "model": model_name, "fold": fold, "task": asdict(task),
        "privileged": asdict(privileged), "dims": asdict(dims),
        "train_params": asdict(params), "structure": model.structure(),
        "bin_cuts": cuts.tolist(), "best_epoch": best_epoch, "control": info.control,
        "tuning": {"budget": tune.budget, "family": info.base or model_name,
                   "criterion": fitted.criterion, "trials": trials, "chosen": chosen},
        "bag_agreement": agreement,
        "n_patients": {k: len(v) for k, v in records.items()},
        "skipped_without_rna": skipped["without_rna"],
        "skipped_without_slides": skipped["without_slides"],
        "skipped_without_label": skipped["without_label"],
        "without_privileged": without_priv if info.uses_rna else {},
        "excluded_slides": excluded, "pathways": list(priv.columns),
        "scaler": _scaler_json(pathway_scaler), "feature_scaler": _scaler_json(feature_scaler),
        "features": {k: (v.item() if hasattr(v, "item") else v)
                     for k, v in (bank.extractor_attrs if bank else {}).items()},
        "teacher": str(teacher_dir) if teacher_dir else None, "code_version": code_version,
    })
    log.info("%s fold %d: best epoch %d, %s", model_name, fold, best_epoch,
             {k: len(v) for k, v in records.items()})
