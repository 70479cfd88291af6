"""The skeleton's models: RNA-only, WSI-only, late-fusion teacher, logit-distilled student.

Every model maps a :class:`Inputs` of one patient to :class:`Outputs`. Students see only the
WSI at inference; the RNA (pathway scores) reaches them only through training losses.
"""

from __future__ import annotations

import torch
from torch import nn

from histodistill.models.base import Inputs, ModelDims, Outputs, RiskModel, TaskLoss
from histodistill.models.catalog import CATALOG
from histodistill.models.layers import ABMIL, SNN
from histodistill.models.survival import binary_kl


class RnaSNN(RiskModel):
    """RNA-only baseline: SNN on pathway scores (MCAT's "SNN" row, on pathways)."""

    info = CATALOG["rna_snn"]

    def __init__(self, dims: ModelDims):
        super().__init__()
        self.encoder = SNN(dims.n_pathways, dims.hidden, dropout=dims.dropout)
        self.head = nn.Linear(dims.hidden, dims.n_out)

    def forward(self, inputs: Inputs) -> Outputs:
        assert inputs.pathways is not None
        e = self.encoder(inputs.pathways)
        return Outputs(self.head(e), e)


class WsiABMIL(RiskModel):
    """WSI-only baseline: gated attention MIL, no RNA anywhere (the floor students must beat)."""

    info = CATALOG["wsi_abmil"]

    def __init__(self, dims: ModelDims):
        super().__init__()
        self.mil = ABMIL(dims.feature_dim, dims.hidden, dims.dropout)
        self.head = nn.Linear(dims.hidden, dims.n_out)

    def forward(self, inputs: Inputs) -> Outputs:
        assert inputs.features is not None
        e, a = self.mil(inputs.features)
        return Outputs(self.head(e), e, a)


class TeacherFusion(RiskModel):
    """Late fusion (MCAT's "AMIL concat"): ABMIL slide embedding ++ SNN pathway embedding."""

    info = CATALOG["teacher_fusion"]

    def __init__(self, dims: ModelDims):
        super().__init__()
        self.mil = ABMIL(dims.feature_dim, dims.hidden, dims.dropout)
        self.snn = SNN(dims.n_pathways, dims.hidden, dropout=dims.dropout)
        self.fuse = nn.Sequential(nn.Linear(2 * dims.hidden, dims.hidden), nn.ReLU(),
                                  nn.Dropout(dims.dropout))
        self.head = nn.Linear(dims.hidden, dims.n_out)

    def forward(self, inputs: Inputs) -> Outputs:
        assert inputs.features is not None and inputs.pathways is not None
        w, a = self.mil(inputs.features)
        e = self.fuse(torch.cat([w, self.snn(inputs.pathways)]))
        return Outputs(self.head(e), e, a)


class StudentKD(WsiABMIL):
    """WSI-only ABMIL trained with logit distillation (Hinton et al. 2015) from
    ``teacher_fusion`` of the same fold. Our choice where the method leaves a gap: the
    discrete-time outputs are independent sigmoids, so the soft targets are per-interval
    Bernoulli distributions at temperature T and the KD term is their summed KL times T^2;
    patients without RNA get no teacher signal (task loss only)."""

    info = CATALOG["student_kd"]

    def __init__(self, dims: ModelDims, kd_temperature: float = 2.0, kd_weight: float = 1.0):
        super().__init__(dims)
        self.kd_temperature, self.kd_weight = kd_temperature, kd_weight

    def extra_losses(self, out: Outputs, teacher_out: Outputs | None, task_loss: TaskLoss
                     ) -> dict[str, torch.Tensor]:
        if teacher_out is None:
            return {}
        kd = binary_kl(out.logits.unsqueeze(0), teacher_out.logits.detach().unsqueeze(0),
                       self.kd_temperature)
        return {"kd": self.kd_weight * kd}
