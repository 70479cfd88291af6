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

from histodistill.models.baselines import Inputs, Outputs, RiskModel
from histodistill.models.survival import nll_loss, risk_score, survival_curve
from histodistill.params import from_config
from histodistill.training.data import FeatureBank, PatientRecord, Standardiser, sample_bag

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
    n_bins: int = 4
    alpha: float = 0.0
    hidden: int = 128
    dropout: float = 0.25
    kd_weight: float = 1.0
    kd_temperature: float = 2.0
    seed: int = 0

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> TrainParams:
        return from_config(cls, cfg, "train")


@dataclass
class RawBag:
    features: np.ndarray | None  # (N, D) sampled patch features, unscaled
    pathways: np.ndarray | None  # (K,) raw pathway scores, None without RNA


class Batcher:
    """Draws a patient's raw inputs; bags are randomly capped only in training mode."""

    def __init__(self, bank: FeatureBank | None, max_patches: int | None,
                 rng: np.random.Generator):
        self.bank, self.max_patches, self.rng = bank, max_patches, rng

    def __call__(self, rec: PatientRecord, train: bool) -> RawBag:
        bag = None
        if self.bank is not None:
            bag = self.bank.bag(rec.slides)
            if train:
                bag = bag[sample_bag(len(bag), self.max_patches, self.rng)]
        return RawBag(bag, rec.pathways)


@dataclass(frozen=True)
class InputTransform:
    """A model's own fold-fitted scaling of patch features and pathway scores. A student and
    its teacher see the same raw bag through their own transforms."""

    features: Standardiser | None
    pathways: Standardiser | None
    use_rna: bool  # False: the model never receives RNA, whatever the patient has

    def __call__(self, raw: RawBag) -> Inputs:
        feats = None
        if raw.features is not None:
            x = self.features(raw.features) if self.features else raw.features
            feats = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        pw = None
        if self.use_rna and self.pathways is not None and raw.pathways is not None:
            pw = torch.from_numpy(self.pathways(raw.pathways))
        return Inputs(feats, pw)


def _task_loss(out: Outputs, rec: PatientRecord, alpha: float) -> torch.Tensor:
    return nll_loss(out.logits.unsqueeze(0), torch.tensor([rec.interval]),
                    torch.tensor([rec.event]), alpha)


def mean_task_loss(model: RiskModel, records: list[PatientRecord], batcher: Batcher,
                   transform: InputTransform, alpha: float) -> float:
    model.eval()
    with torch.no_grad():
        losses = [_task_loss(model(transform(batcher(r, train=False))), r, alpha).item()
                  for r in records]
    return float(np.mean(losses)) if losses else float("nan")


def fit(model: RiskModel, train: list[PatientRecord], val: list[PatientRecord], batcher: Batcher,
        transform: InputTransform, params: TrainParams, rng: np.random.Generator,
        teacher: tuple[RiskModel, InputTransform] | None = None) -> tuple[pd.DataFrame, int]:
    """Train in place; the model ends with the weights of the best validation epoch.

    ``teacher``: a frozen model and its transform; it sees the same sampled bag as the
    student, and only patients with RNA get a teacher signal."""
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
            out = model(transform(raw))
            loss = _task_loss(out, rec, params.alpha)
            sums["task"] += loss.item()
            teacher_out = None
            if teacher is not None and raw.pathways is not None:
                with torch.no_grad():
                    teacher_out = teacher[0](teacher[1](raw))
            for name, extra in model.extra_losses(out, teacher_out).items():
                weight = params.kd_weight if name == "kd" else 1.0
                loss = loss + weight * extra
                sums[name] = sums.get(name, 0.0) + extra.item()
            (loss / params.batch_patients).backward()
            if step % params.batch_patients == 0 or step == len(order):
                opt.step()
                opt.zero_grad()
        val_loss = mean_task_loss(model, val, batcher, transform, params.alpha)
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
    return pd.DataFrame(history), best_epoch


def predict(model: RiskModel, records: list[PatientRecord], batcher: Batcher,
            transform: InputTransform) -> pd.DataFrame:
    """Risk and survival curve per patient (every patch of the bag)."""
    model.eval()
    rows = []
    with torch.no_grad():
        for rec in records:
            inputs = transform(batcher(rec, train=False))
            logits = model(inputs).logits
            surv = survival_curve(logits).numpy()
            rows.append({"patient": rec.patient, "time": rec.time, "event": rec.event,
                         "risk": float(risk_score(logits)),
                         "n_patches": 0 if inputs.features is None else len(inputs.features),
                         **{f"surv_{j}": float(s) for j, s in enumerate(surv)}})
    return pd.DataFrame(rows)
