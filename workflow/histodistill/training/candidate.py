"""Train one candidate configuration of a model on a fold's prepared data, and score it on the
inner validation split; the permuted privileged vector of a control; the agreement between
predictions from capped and from full bags."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import torch

from histodistill.concordance import harrell_cindex
from histodistill.models.base import ModelDims, RiskModel
from histodistill.models.ghanet import privileged_groups
from histodistill.models.mope import reconstructibility
from histodistill.models.registry import build_model, model_class
from histodistill.rna.gene_columns import column_groups
from histodistill.training.data import FeatureBank, PatientRecord, Standardiser
from histodistill.training.loop import (
    Batcher,
    InputTransform,
    TrainParams,
    fit,
    fit_direct,
    predict,
)
from histodistill.training.task import Task


def structure_of(model_name: str, params: TrainParams, records: list[PatientRecord],
                 pathway_scaler: Standardiser | None, bank: FeatureBank | None,
                 feature_scaler: Standardiser | None, seed: int, gene_columns: list[str] | None,
                 task: Task) -> dict[str, Any]:
    """Constructor options fitted on the training part (G-HANet's groups, MoPE's weights,
    wsi_meanpool's outcome). ``gene_columns``: the ``set|gene`` columns of a gene-level
    vector, whose groups are the sets (G-HANet as published); otherwise G-HANet clusters the
    columns."""
    base = model_class(model_name).info.base or model_name
    if base == "wsi_meanpool":
        return {"outcome": task.type}
    with_priv = [r for r in records if r.pathways is not None]
    if pathway_scaler is None or not with_priv:
        return {}
    if base == "ghanet" and gene_columns is not None:
        return {"groups": column_groups(gene_columns)}
    x = pathway_scaler(np.stack([r.pathways for r in with_priv]))  # type: ignore[misc]
    if base == "ghanet":
        return {"groups": privileged_groups(x, params.n_groups)}
    if base == "mope" and bank is not None and feature_scaler is not None:
        means = np.stack([feature_scaler(bank.bag(r.slides).mean(axis=0)) for r in with_priv])
        return {"reconstructibility": reconstructibility(means, x, seed).tolist()}
    return {}


def permute_privileged(records: dict[str, list[PatientRecord]], rng: np.random.Generator
                       ) -> dict[str, list[PatientRecord]]:
    """Shuffle the privileged vector among the patients who have one, within each role: the
    same distribution, no link to the patient. A student and its teacher's twin draw the same
    permutation (same seed, same patients in the same order)."""
    out = {}
    for role, recs in records.items():
        have = [i for i, r in enumerate(recs) if r.pathways is not None]
        shuffled = [recs[have[j]].pathways for j in rng.permutation(len(have))]
        new = list(recs)
        for i, vector in zip(have, shuffled, strict=True):
            new[i] = replace(recs[i], pathways=vector)
        out[role] = new
    return out


def validation_score(task: Task, preds: pd.DataFrame) -> float:
    """Harrell's c-index (AUC for a binary task) of ``preds``; NaN when undefined (no event,
    one class, no comparable pair)."""
    try:
        if task.type == "survival":
            return harrell_cindex(preds["time"].to_numpy(), preds["event"].to_numpy(),
                                  preds["risk"].to_numpy())
        from sklearn.metrics import roc_auc_score

        return float(roc_auc_score(preds["label"].to_numpy(), preds["risk"].to_numpy()))
    except ValueError:
        return float("nan")


@dataclass
class Candidate:
    params: TrainParams
    dims: ModelDims
    model: RiskModel
    batcher: Batcher
    history: pd.DataFrame
    best_epoch: int
    score: float  # inner-validation c-index / AUC (-inf when undefined: never chosen first)
    val_loss: float


@dataclass
class Fitting:
    """A fold's prepared data, shared by every candidate of one model."""

    model_name: str
    fold: int
    records: dict[str, list[PatientRecord]]
    bank: FeatureBank | None
    feature_scaler: Standardiser | None
    pathway_scaler: Standardiser | None
    transform: InputTransform
    teacher: tuple[RiskModel, InputTransform] | None
    task: Task
    cuts: np.ndarray
    n_pathways: int
    device: torch.device
    gene_columns: list[str] | None

    @property
    def criterion(self) -> str:
        return "cindex" if self.task.type == "survival" else "auc"

    def train(self, params: TrainParams) -> Candidate:
        """Every candidate starts from the same seeds: only its parameters differ."""
        torch.manual_seed(params.seed * 1009 + self.fold)
        rng = np.random.default_rng([params.seed, self.fold])
        batcher = Batcher(self.bank, params.max_patches, rng)
        feature_dim = len(self.feature_scaler.mean) if self.feature_scaler is not None else 0
        dims = ModelDims(feature_dim, self.n_pathways, self.task.n_out(self.cuts),
                         params.hidden, params.dropout)
        structure = structure_of(self.model_name, params, self.records["train"],
                                 self.pathway_scaler, self.bank, self.feature_scaler,
                                 params.seed + self.fold, self.gene_columns, self.task)
        model = build_model(self.model_name, dims, **asdict(params), **structure)
        model = model.to(self.device)
        train, val = self.records["train"], self.records["val"]
        if model.info.direct:
            history, best_epoch = fit_direct(model, train, val, batcher, self.transform,
                                             self.task, self.cuts, params.alpha)
        else:
            history, best_epoch = fit(model, train, val, batcher, self.transform, params, rng,
                                      self.task, self.teacher)
        score = validation_score(self.task, predict(model, val, batcher, self.transform,
                                                    self.task))
        val_loss = float(history["val_task_loss"].iloc[best_epoch])
        return Candidate(params, dims, model, batcher, history, best_epoch,
                         -np.inf if np.isnan(score) else score, val_loss)


def bag_agreement(model: RiskModel, val: list[PatientRecord], bank: FeatureBank | None,
                  params: TrainParams, transform: InputTransform, task: Task, fold: int
                  ) -> dict[str, Any] | None:
    """Spearman correlation, over the inner-validation patients, of the risk predicted from a
    training-sized random draw of each bag (``max_patches``) and from the full bag: how far
    the model's inference departs from what it was trained on. None without patches or cap."""
    if bank is None or params.max_patches is None:
        return None
    from scipy.stats import spearmanr

    capped_batcher = Batcher(bank, params.max_patches, np.random.default_rng([params.seed,
                                                                              fold, 3]))
    full = predict(model, val, capped_batcher, transform, task)["risk"].to_numpy()
    capped = predict(model, val, capped_batcher, transform, task, capped=True)["risk"]
    capped_patients = sum(bank.n_patches(r.slides) > params.max_patches for r in val)
    rho = float(spearmanr(full, capped.to_numpy()).statistic) if len(val) > 2 else float("nan")
    return {"max_patches": params.max_patches, "val_patients": len(val),
            "val_patients_capped": int(capped_patients),
            "spearman": None if np.isnan(rho) else rho}
