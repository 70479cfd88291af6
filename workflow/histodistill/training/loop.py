"""The training loop: one patient bag per step, gradient accumulation, early stopping on the
inner validation split, restore of the best epoch."""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from histodistill.models.base import Inputs, RiskModel
from histodistill.params import from_config
from histodistill.training.data import FeatureBank, PatientRecord, Standardiser
from histodistill.training.task import Task

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainParams:
    epochs: int = 30
    min_epochs: int = 5
    patience: int = 8
    lr: float = 2e-4
    weight_decay: float = 1e-5
    batch_patients: int = 8  # gradient accumulation: patients per optimiser step
    max_patches: int | None = 512  # bag cap while training (inference sees every patch)
    cache_mb: float = 2048.0  # patch features kept in memory; the rest is re-read from disk
    n_bins: int = 4
    alpha: float = 0.0
    hidden: int = 128
    dropout: float = 0.25
    kd_weight: float = 1.0
    kd_temperature: float = 2.0
    n_groups: int = 6  # ghanet: groups of the privileged vector
    recon_weight: float = 0.3  # ghanet: weight of the reconstruction loss
    recon_gamma: float = 3.0  # ghanet: exponent of the cosine error (official code: 3)
    top_ratio: float = 0.2  # ghanet: share of the bag in each genome-informed attention
    usage_weight: float = 1.0  # mope: weight of KL(teacher usage || student usage)
    expert_weight: float = 1.0  # mope: weight of the expert-state alignment
    usage_target: str = "teacher"  # mope: teacher | reconstructible (see models/mope.py)
    missing_rate: float = 0.5  # bidistill: probability of dropping the privileged vector
    feature_weight: float = 1.0  # bidistill: weight of the feature distillation terms
    penalty: float = 10.0  # wsi_meanpool: ridge weight (scikit-survival's alpha; C = 1/penalty)
    pooling: str = "mean"  # wsi_meanpool: mean | mean_max
    device: str = "cpu"  # cpu | auto | cuda
    seed: int = 0

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> TrainParams:
        return from_config(cls, cfg, "train")


@dataclass
class RawBag:
    features: np.ndarray | None  # (N, D) sampled patch features, unscaled
    pathways: np.ndarray | None  # (K,) raw privileged vector, None when absent


class Batcher:
    """Draws a patient's raw inputs; bags are randomly capped only in training mode."""

    def __init__(self, bank: FeatureBank | None, max_patches: int | None,
                 rng: np.random.Generator):
        self.bank, self.max_patches, self.rng = bank, max_patches, rng

    def __call__(self, rec: PatientRecord, train: bool) -> RawBag:
        bag = None
        if self.bank is not None:
            bag = self.bank.sample(rec.slides, self.max_patches, self.rng) if train \
                else self.bank.bag(rec.slides)
        return RawBag(bag, rec.pathways)


@dataclass(frozen=True)
class InputTransform:
    """A model's own fold-fitted scaling of patch features and the privileged vector. A student
    and its teacher see the same raw bag through their own transforms.

    ``rna_in_training`` / ``rna_at_inference``: whether the model receives the privileged
    vector in training steps / in validation and prediction (only RNA models do)."""

    features: Standardiser | None
    pathways: Standardiser | None
    rna_in_training: bool
    rna_at_inference: bool

    device: torch.device = torch.device("cpu")

    def __call__(self, raw: RawBag, train: bool = False) -> Inputs:
        feats = None
        if raw.features is not None:
            x = self.features(raw.features) if self.features else raw.features
            x = np.ascontiguousarray(x, dtype=np.float32)
            feats = torch.from_numpy(x if x.flags.writeable else x.copy()).to(
                self.device, non_blocking=True)
        pw = None
        use = self.rna_in_training if train else self.rna_at_inference
        if use and self.pathways is not None and raw.pathways is not None:
            pw = torch.from_numpy(self.pathways(raw.pathways)).to(self.device)
        return Inputs(feats, pw)


def _task_loss(task: Task, logits: torch.Tensor, rec: PatientRecord, alpha: float
               ) -> torch.Tensor:
    return task.loss(logits, rec.interval, rec.event, rec.label, alpha)


def mean_task_loss(model: RiskModel, records: list[PatientRecord], batcher: Batcher,
                   transform: InputTransform, task: Task, alpha: float) -> float:
    """Validation loss, on the inference path (no privileged data for histology models)."""
    model.eval()
    with torch.no_grad():
        losses = [_task_loss(task, model(transform(batcher(r, train=False))).logits, r,
                             alpha).item() for r in records]
    return float(np.mean(losses)) if losses else float("nan")


def fit(model: RiskModel, train: list[PatientRecord], val: list[PatientRecord], batcher: Batcher,
        transform: InputTransform, params: TrainParams, rng: np.random.Generator,
        task: Task, teacher: tuple[RiskModel, InputTransform] | None = None
        ) -> tuple[pd.DataFrame, int]:
    """Train in place; the model ends with the weights of the best validation epoch.

    ``teacher``: a frozen model and its transform; it sees the same sampled bag as the
    student; a teacher that reads the privileged vector gives a signal only for patients who
    have it (a histology teacher, for self-distillation, for every patient). Each model's
    extra losses (already weighted) are added to the task loss and logged by name."""
    opt = torch.optim.AdamW(model.parameters(), lr=params.lr, weight_decay=params.weight_decay)
    best_loss, best_epoch, best_state = float("inf"), -1, copy.deepcopy(model.state_dict())
    history = []
    for epoch in range(params.epochs):
        model.train()
        order = rng.permutation(len(train))
        sums: dict[str, float] = {"task": 0.0}
        opt.zero_grad()
        for step, i in enumerate(order, 1):
            rec = train[i]
            raw = batcher(rec, train=True)
            out = model(transform(raw, train=True))
            loss = _task_loss(task, out.logits, rec, params.alpha)
            sums["task"] += loss.item()
            teacher_out = None
            if teacher is not None and (raw.pathways is not None
                                        or not teacher[1].rna_at_inference):
                with torch.no_grad():
                    teacher_out = teacher[0](teacher[1](raw))
            extras = model.extra_losses(out, teacher_out,
                                        lambda logits, r=rec: _task_loss(task, logits, r,
                                                                         params.alpha))
            for name, extra in extras.items():
                loss = loss + extra
                sums[name] = sums.get(name, 0.0) + extra.item()
            (loss / params.batch_patients).backward()
            if step % params.batch_patients == 0 or step == len(order):
                opt.step()
                opt.zero_grad()
        val_loss = mean_task_loss(model, val, batcher, transform, task, params.alpha)
        row = {"epoch": epoch, "val_task_loss": val_loss,
               **{f"train_{k}_loss": v / len(train) for k, v in sums.items()}}
        history.append(row)
        log.info("epoch %d: %s", epoch, ", ".join(f"{k}={v:.4f}" for k, v in row.items()
                                                   if k != "epoch"))
        if val_loss < best_loss - 1e-6 or best_epoch < 0:
            best_loss, best_epoch = val_loss, epoch
            best_state = copy.deepcopy(model.state_dict())
        elif epoch + 1 >= params.min_epochs and epoch - best_epoch >= params.patience:
            log.info("early stop at epoch %d (best %d)", epoch, best_epoch)
            break
    model.load_state_dict(best_state)
    return pd.DataFrame(history).fillna(0.0), best_epoch


def fit_direct(model: Any, train: list[PatientRecord], val: list[PatientRecord],
               batcher: Batcher, transform: InputTransform, task: Task, cuts: np.ndarray,
               alpha: float) -> tuple[pd.DataFrame, int]:
    """Closed-form fit of a model with ``pooled`` and ``fit_pooled`` (wsi_meanpool) on the
    training patients' full bags - the bags it predicts from. One history row (epoch 0)."""
    model.eval()
    with torch.no_grad():
        x = np.stack([model.pooled(transform(batcher(r, train=False)).features).cpu().numpy()
                      for r in train]).astype(np.float64)
    time = np.array([r.time for r in train], dtype=np.float64)
    event = np.array([r.event for r in train])
    label = None if task.type == "survival" else np.array([r.label for r in train])
    ends = np.append(cuts, time.max())
    model.fit_pooled(x, time, event, label, ends)
    row = {"epoch": 0, "val_task_loss": mean_task_loss(model, val, batcher, transform, task,
                                                       alpha),
           "train_task_loss": mean_task_loss(model, train, batcher, transform, task, alpha)}
    return pd.DataFrame([row]), 0


def predict(model: RiskModel, records: list[PatientRecord], batcher: Batcher,
            transform: InputTransform, task: Task, pathway_names: list[str] | None = None,
            capped: bool = False) -> pd.DataFrame:
    """Risk (and survival curve or logit) per patient from every patch of the bag (or, with
    ``capped``, from a training-sized random draw of it); models with a pathway usage (MoPE)
    add one ``usage:{pathway}`` column per pathway."""
    model.eval()
    rows = []
    with torch.no_grad():
        for rec in records:
            inputs = transform(batcher(rec, train=capped))
            out = model(inputs)
            row: dict[str, Any] = {"patient": rec.patient, "time": rec.time, "event": rec.event}
            if rec.label is not None:
                row["label"] = int(rec.label)
            row.update(task.prediction(out.logits))
            row["n_patches"] = 0 if inputs.features is None else len(inputs.features)
            usage = out.extras.get("usage")
            if usage is not None and pathway_names is not None:
                row.update({f"usage:{p}": float(u) for p, u in zip(pathway_names, usage,
                                                                    strict=True)})
            rows.append(row)
    return pd.DataFrame(rows)
