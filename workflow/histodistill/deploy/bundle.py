"""Final models: a trained model's fold ensemble, written as a self-describing bundle.

**Construction** (``fold_ensemble``): the final model is the K models the cross-validation
trained, one per fold, each with the epoch and the tuning candidate its own inner validation
split chose. Its risk is the mean of their risks (survival: each model's ``-sum_j S_j`` at
its own intervals, as in the cross-validation; binary: the mean probability); its survival
function is the mean of theirs (each linear between its interval ends, as in
evaluation/curves.py), written at the union of their interval ends. No refit: nothing of the
final model is chosen after the cross-validation, so the CV metrics describe the procedure
that built every member (each member was tested on the fold it never saw).

**Threshold** of the risk groups, fitted on the training cohort and never on a scored one:
survival, the median final-model risk of the training cohort's patients (it reads their risk
distribution, no outcome); binary, Youden's J of the final model's probabilities on the
training cohort's labelled patients.

A bundle is a folder: ``weights.safetensors`` (every member's state dict, keys
``fold{k}.{parameter}``, read with no pickle) and ``manifest.json`` (manifest.schema.json:
extractor and its weights' sha256, tiling, feature scalers, task, time bins, threshold,
training cohort and its CV metrics with CIs, package version and code hashes). Paths inside
are relative to the folder, so a bundle copied elsewhere works there.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from histodistill import __version__
from histodistill.deploy.construction import CONSTRUCTION, THRESHOLD_RULE
from histodistill.deploy.manifest import FORMAT, read_manifest, validate_manifest
from histodistill.errors import InputError
from histodistill.evaluation.curves import fold_knots, interpolate
from histodistill.evaluation.evaluate import (
    EvalParams,
    model_cv_metrics,
    read_predictions,
    youden_threshold,
)
from histodistill.io import atomic_path, write_json
from histodistill.models.base import Outputs, RiskModel
from histodistill.models.catalog import CATALOG
from histodistill.provenance import file_sha256
from histodistill.training.data import Standardiser
from histodistill.training.fold import rebuild_model
from histodistill.training.loop import InputTransform, RawBag
from histodistill.training.task import Task

log = logging.getLogger(__name__)



def _fold_dir(prediction_file: str | Path) -> Path:
    return Path(prediction_file).parent


def _member(meta: dict[str, Any], preds: pd.DataFrame, task: Task) -> dict[str, Any]:
    knots: list[float] = []
    if task.type == "survival":
        train_times = preds.loc[preds["role"] == "train", "time"].to_numpy()
        knots = fold_knots(np.asarray(meta["bin_cuts"]), train_times).tolist()
    return {"fold": int(meta["fold"]), "dims": meta["dims"], "params": meta["train_params"],
            "structure": meta.get("structure", {}), "bin_cuts": meta["bin_cuts"],
            "knots": knots, "feature_scaler": meta["feature_scaler"],
            "pathways": meta["pathways"]}


def _threshold(risk: pd.Series, label: pd.Series | None, task: Task) -> float:
    if task.type == "survival":
        return float(np.median(risk.to_numpy()))
    assert label is not None
    known = label.notna()
    return youden_threshold(label[known].to_numpy().astype(int), risk[known].to_numpy())


def bundle_model(model: str, prediction_files: list[str | Path], cohort: str,
                 out_manifest: str | Path, out_weights: str | Path, tiling: dict[str, Any],
                 params: EvalParams, task: Task, code_version: str = "") -> dict[str, Any]:
    """Bundle ``model``'s fold models of ``cohort`` (their predictions.tsv, with meta.json
    and model.pt beside each) into ``out_weights`` and ``out_manifest`` (written last, so a
    manifest exists only beside complete weights)."""
    from safetensors.torch import save_file

    info = CATALOG.get(model)
    if info is None or not info.histology_only:
        raise InputError(f"{model}: only histology-only models can be bundled (this one reads "
                         "RNA at inference)")
    metas, tensors, members = [], {}, []
    per_fold = []
    for f in sorted(map(str, prediction_files)):
        d = _fold_dir(f)
        meta = json.loads((d / "meta.json").read_text(encoding="utf-8"))
        if meta["model"] != model or Task(**meta["task"]) != task:
            raise InputError(f"{d}: a {meta['model']} model of task {meta['task']}, not "
                             f"{model} of {asdict(task)}; re-run its train job")
        preds = read_predictions([f])
        state = torch.load(d / "model.pt", map_location="cpu", weights_only=True)
        tensors.update({f"fold{meta['fold']}.{k}": v.detach().cpu().contiguous().clone()
                        for k, v in state.items()})
        metas.append(meta)
        members.append(_member(meta, preds, task))
        per_fold.append(preds.set_index("patient")["risk"].rename(int(meta["fold"])))
    features = metas[0]["features"]
    if any(m["features"] != features for m in metas) or not features:
        raise InputError(f"{model}: its fold models were trained on features of different "
                         "extractors (or none); re-run its train jobs")
    # every patient of the cohort is predicted by every fold's model (train, val or test)
    risks = pd.concat(per_fold, axis=1, join="inner").sort_index(axis=1)
    risk = pd.Series(risks.to_numpy().mean(axis=1), index=risks.index)
    oof = read_predictions(list(prediction_files))
    oof = oof[oof["role"] == "test"].set_index("patient")
    label = oof["label"].reindex(risk.index) if task.type == "binary" else None
    events = oof["label"] if task.type == "binary" else oof["event"]
    cv = model_cv_metrics(model, list(prediction_files), params, task)

    with atomic_path(out_weights) as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT, "model": model})
    manifest: dict[str, Any] = {
        "format": FORMAT, "model": model,
        "construction": {"kind": "fold_ensemble",
                         "description": CONSTRUCTION.format(k=len(members))},
        "task": asdict(task),
        "weights": {"file": Path(out_weights).name, "sha256": file_sha256(out_weights)},
        "extractor": {"name": str(features["extractor"]),
                      "dim": int(metas[0]["dims"]["feature_dim"]),
                      "weights_sha256": str(features["weights_sha256"]),
                      "random_weights": bool(features.get("random_weights", False))},
        "tiling": {"patch_um": float(tiling["patch_um"]), "patch_px": int(tiling["patch_px"]),
                   "min_tissue_fraction": float(tiling["min_tissue_fraction"])},
        "members": members,
        "threshold": {"value": _threshold(risk, label, task), "rule": THRESHOLD_RULE[task.type]},
        "training": {"cohort": cohort, "n_patients": int(len(oof)),
                     "n_events": int(events.sum()), "n_folds": len(members),
                     "cv_metrics": [{k: _finite(r[k]) if k != "metric" else r[k]
                                     for k in ("metric", "value", "ci_low", "ci_high")}
                                    for r in cv]},
        "provenance": {"package_version": __version__,
                       "training_code": sorted({str(m.get("code_version", "")) for m in metas}),
                       "bundle_code": code_version},
    }
    if task.type == "survival":
        manifest["survival_times"] = sorted({t for m in members for t in m["knots"][1:]})
    validate_manifest(manifest, out_manifest)
    write_json(out_manifest, manifest)
    log.info("%s: final model of %d fold models, threshold %.4g (%s)", model, len(members),
             manifest["threshold"]["value"], manifest["threshold"]["rule"])
    return manifest


def _finite(v: Any) -> float | None:
    v = float(v)
    return v if np.isfinite(v) else None


@dataclass
class Member:
    fold: int
    model: RiskModel
    transform: InputTransform
    knots: np.ndarray
    pathways: list[str]


class FinalModel:
    """A bundle loaded for scoring: ``predict`` a patient's bag of raw patch features."""

    def __init__(self, bundle: str | Path):
        from safetensors.torch import load_file

        self.path = Path(bundle)
        self.manifest = read_manifest(self.path)
        self.task = Task(**self.manifest["task"])
        weights = self.path / self.manifest["weights"]["file"]
        if not weights.is_file():
            raise InputError(f"model bundle {self.path}: {weights.name} is missing; copy the "
                             "whole bundle folder")
        if file_sha256(weights) != self.manifest["weights"]["sha256"]:
            raise InputError(f"model bundle {self.path}: {weights.name} does not match the "
                             "sha256 in its manifest (corrupt or from another bundle); copy "
                             "the bundle folder again")
        state = load_file(str(weights))
        self.members = []
        for m in self.manifest["members"]:
            prefix = f"fold{m['fold']}."
            own = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
            model = rebuild_model(self.manifest["model"], m["dims"], m["params"],
                                  m["structure"], own)
            scaler = m["feature_scaler"]
            transform = InputTransform(
                None if scaler is None else Standardiser(np.asarray(scaler["mean"]),
                                                         np.asarray(scaler["std"])),
                None, False, False)
            self.members.append(Member(m["fold"], model, transform, np.asarray(m["knots"]),
                                       m["pathways"]))
        self.times = np.asarray(self.manifest.get("survival_times", []), dtype=np.float64)
        self.threshold = float(self.manifest["threshold"]["value"])

    @property
    def name(self) -> str:
        return str(self.manifest["model"])

    def outputs(self, feats: np.ndarray) -> list[Outputs]:
        """Every member's outputs on one bag (RNA never given: histology-only inference)."""
        with torch.no_grad():
            return [m.model(m.transform(RawBag(feats, None))) for m in self.members]

    def predict(self, feats: np.ndarray) -> dict[str, float]:
        """risk, then the survival curve at ``survival_times`` (``surv_j``) or the
        probability's logit, then MoPE's pathway usage (``usage:{pathway}``)."""
        outs = self.outputs(feats)
        preds = [self.task.prediction(o.logits) for o in outs]
        row: dict[str, float] = {"risk": float(np.mean([p["risk"] for p in preds]))}
        if self.task.type == "survival":
            curves = [interpolate(np.array([p[f"surv_{j}"] for j in range(len(m.knots) - 1)]),
                                  m.knots, self.times)[0]
                      for p, m in zip(preds, self.members, strict=True)]
            row.update({f"surv_{j}": float(s) for j, s in enumerate(np.mean(curves, axis=0))})
        usage = [o.extras.get("usage") for o in outs]
        if all(u is not None for u in usage):
            mean = np.mean([u.cpu().numpy() for u in usage], axis=0)
            row.update({f"usage:{p}": float(u)
                        for p, u in zip(self.members[0].pathways, mean, strict=True)})
        return row

    def group(self, risk: float) -> str:
        if self.task.type == "binary":
            return "positive" if risk >= self.threshold else "negative"
        return "high" if risk > self.threshold else "low"
