"""Bidirectional distillation with a missing privileged modality (the BCNB paper's design).

Two branches are trained together: a *multimodal* branch (its own ABMIL + SNN on the
privileged vector, fused) and a *single-modal* WSI branch (ABMIL). Our choices where the paper
leaves a gap:

* single <- multi (only when the privileged vector was present this step): logit KD
  (per-output Bernoulli KL at temperature T, as :class:`StudentKD`) and feature distillation
  (MSE of the single-modal embedding to the detached fused embedding);
* multi <- single: the multimodal branch's WSI embedding is pulled to the detached
  single-modal embedding (MSE), so it stays useful when the tabular part is absent;
* the multimodal branch has its own task loss; while training, the privileged vector is
  dropped with probability ``missing_rate`` (and is absent for patients without it), and a
  learned "missing" embedding takes its place;
* **inference** always uses the single-modal branch: histodistill's students are
  histology-only, which is exactly the paper's rule for a test patient without the modality.
"""

from __future__ import annotations

import torch
from torch import nn

from histodistill.models.base import Inputs, ModelDims, Outputs, RiskModel, TaskLoss
from histodistill.models.catalog import CATALOG
from histodistill.models.layers import ABMIL, SNN
from histodistill.models.survival import binary_kl


class BiDistill(RiskModel):
    info = CATALOG["bidistill"]

    def __init__(self, dims: ModelDims, missing_rate: float = 0.5, kd_temperature: float = 2.0,
                 kd_weight: float = 1.0, feature_weight: float = 1.0):
        super().__init__()
        h = dims.hidden
        self.single = ABMIL(dims.feature_dim, h, dims.dropout)
        self.single_head = nn.Linear(h, dims.n_out)
        self.multi_wsi = ABMIL(dims.feature_dim, h, dims.dropout)
        self.tabular = SNN(dims.n_pathways, h, dropout=dims.dropout)
        self.missing = nn.Parameter(torch.zeros(h))
        self.fuse = nn.Sequential(nn.Linear(2 * h, h), nn.ReLU(), nn.Dropout(dims.dropout))
        self.multi_head = nn.Linear(h, dims.n_out)
        self.missing_rate, self.kd_temperature = missing_rate, kd_temperature
        self.kd_weight, self.feature_weight = kd_weight, feature_weight

    def forward(self, inputs: Inputs) -> Outputs:
        assert inputs.features is not None
        s, a = self.single(inputs.features)
        out = Outputs(self.single_head(s), s, a)
        if self.training:  # the multimodal branch exists for training only
            w, _ = self.multi_wsi(inputs.features)
            present = inputs.pathways is not None and \
                bool(torch.rand(()) >= self.missing_rate)
            t = self.tabular(inputs.pathways) if present else self.missing
            m = self.fuse(torch.cat([w, t]))
            out.extras.update(multi=m, multi_wsi=w, multi_logits=self.multi_head(m),
                              present=torch.tensor(present))
        return out

    def extra_losses(self, out: Outputs, teacher_out: Outputs | None, task_loss: TaskLoss
                     ) -> dict[str, torch.Tensor]:
        if "multi" not in out.extras:
            return {}
        x = out.extras
        losses = {"multi_task": task_loss(x["multi_logits"]),
                  "multi_from_single": self.feature_weight *
                  ((x["multi_wsi"] - out.embedding.detach()) ** 2).mean()}
        if bool(x["present"]):
            kd = binary_kl(out.logits.unsqueeze(0), x["multi_logits"].detach().unsqueeze(0),
                           self.kd_temperature)
            losses["kd"] = self.kd_weight * kd
            losses["single_from_multi"] = self.feature_weight * \
                ((out.embedding - x["multi"].detach()) ** 2).mean()
        return losses
