"""What every model takes and returns, and the base class the training loop drives.

A model maps one patient's :class:`Inputs` to :class:`Outputs`. ``Inputs.pathways`` is the
*privileged* vector (pathway scores, clinical covariates or both, see training/privileged.py):
it reaches a histology-only model only while training, never at inference.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from histodistill.models.catalog import ModelInfo

TaskLoss = Callable[[torch.Tensor], torch.Tensor]  # logits (n_out,) -> this patient's loss


@dataclass
class Inputs:
    features: torch.Tensor | None  # (N, D) patch features of all the patient's slides
    pathways: torch.Tensor | None  # (K,) standardised privileged vector, None when absent


@dataclass
class Outputs:
    logits: torch.Tensor  # (n_out,)
    embedding: torch.Tensor
    attention: torch.Tensor | None = None  # (N,)
    extras: dict[str, torch.Tensor] = field(default_factory=dict)  # usage, expert states, ...


@dataclass(frozen=True)
class ModelDims:
    feature_dim: int
    n_pathways: int
    n_out: int
    hidden: int = 128
    dropout: float = 0.25


class RiskModel(nn.Module):
    """Base class. ``info`` (from models/catalog.py) says what a model needs."""

    info: ModelInfo

    @property
    def needs_rna(self) -> bool:
        return self.info.needs_rna

    def forward(self, inputs: Inputs) -> Outputs:  # pragma: no cover - abstract
        raise NotImplementedError

    def extra_losses(self, out: Outputs, teacher_out: Outputs | None, task_loss: TaskLoss
                     ) -> dict[str, torch.Tensor]:
        """Weighted losses beyond the task loss of ``out.logits`` (distillation, reconstruction,
        auxiliary branches); ``teacher_out`` is the frozen teacher's output on the same bag
        when the model has a teacher and the patient has privileged data. None by default."""
        return {}

    def structure(self) -> dict[str, object]:
        """Data-dependent constructor options (saved in meta.json to rebuild the model)."""
        return {}
