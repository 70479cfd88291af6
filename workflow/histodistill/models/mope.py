"""MoPE: mixture of pathway experts, distilled from RNA into histology-only experts.

Where the description leaves a gap, our choices:

* **Teacher** (``mope_teacher``): pathway k's token is ``e_k + s_k w_k`` (a learned identity
  embedding plus the standardised score times a learned direction); the K tokens read the patch
  bag by cross-attention; expert state = MLP([token, read]); a linear gate over the states
  gives the usage ``u^T`` (softmax over pathways); each expert has its own linear head and the
  logits are the usage-weighted mixture of expert heads. Trained alone, before the student.
* **Student** (``mope``): K learned pathway-indexed queries read the bag (no RNA); expert
  state = MLP(read) + read; same gate/mixture form, its own usage ``u^S``.
* **Alignment** (patients with RNA only, teacher frozen): ``usage_weight`` x KL(u^T || u^S)
  plus ``expert_weight`` x mean_k w_k ||s^S_k - s^T_k||^2 / H, with w_k the pathway's
  *reconstructibility*: the cross-validated R^2 (clipped at 0) of a ridge regression from the
  patient's mean patch feature to pathway k, fitted on the fold's training patients only
  (:func:`reconstructibility`), normalised to mean 1 (all zero: no expert term).
* **Usage target** (``usage_target``). ``teacher`` (default, as METHODS.md specifies): the
  KL's target is the teacher's usage ``u^T``. ``reconstructible``: the target is ``u^T``
  re-weighted by reconstructibility and renormalised, ``u~_k = u^T_k w_k / sum_j u^T_j w_j``
  (all w zero: ``u^T``). Why the option: a teacher that reads the slide itself gets the
  histology-visible programmes from its reads, so its gate favours the pathways whose RNA
  adds what histology lacks; the student, copying that usage, routes through experts that
  cannot reconstruct their pathway. On the demo generator (benchmarks/RESULTS.md) the
  teacher's and the spec student's usage lean towards the hidden programmes; the
  re-weighted target moves the student's usage onto the visible ones, at a c-index within
  seed noise of the spec's (no gain either).
  This is our extension of the paper's idea (transfer *which programmes matter* under
  partial observability), not part of its description.
"""

from __future__ import annotations

import math
from typing import Literal, get_args

import numpy as np
import torch
from torch import nn

from histodistill.models.base import Inputs, ModelDims, Outputs, RiskModel, TaskLoss
from histodistill.models.catalog import CATALOG
from histodistill.models.layers import QueryReader, patch_encoder

UsageTarget = Literal["teacher", "reconstructible"]


def reconstructibility(mean_features: np.ndarray, scores: np.ndarray, seed: int = 0
                       ) -> np.ndarray:
    """Per-column cross-validated R^2 (>= 0) of ridge regression ``mean_features -> scores``
    over training patients (rows); 5 folds (fewer for tiny folds), alpha chosen inside."""
    from sklearn.linear_model import RidgeCV
    from sklearn.model_selection import KFold, cross_val_predict

    n = len(scores)
    if n < 6:
        return np.zeros(scores.shape[1])
    cv = KFold(n_splits=min(5, n // 2), shuffle=True, random_state=seed)
    pred = cross_val_predict(RidgeCV(alphas=np.logspace(-2, 4, 13)), mean_features, scores,
                             cv=cv)
    ss_res = ((scores - pred) ** 2).sum(axis=0)
    ss_tot = ((scores - scores.mean(axis=0)) ** 2).sum(axis=0)
    r2 = 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, np.inf)
    return np.clip(r2, 0.0, 1.0)


class Mixture(nn.Module):
    """K expert states (K, H) -> usage (K,) and usage-weighted mixture of per-expert heads."""

    def __init__(self, k: int, hidden: int, n_out: int):
        super().__init__()
        self.gate = nn.Linear(hidden, 1)
        self.weight = nn.Parameter(torch.randn(k, hidden, n_out) / math.sqrt(hidden))
        self.bias = nn.Parameter(torch.zeros(k, n_out))

    def forward(self, states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        usage = torch.softmax(self.gate(states).squeeze(-1), dim=0)
        per_expert = torch.einsum("kh,kho->ko", states, self.weight) + self.bias
        return usage @ per_expert, usage


class _Experts(RiskModel):
    def __init__(self, dims: ModelDims):
        super().__init__()
        h = dims.hidden
        self.patches = patch_encoder(dims.feature_dim, h, dims.dropout)
        self.reader = QueryReader(h, dropout=dims.dropout)
        self.mixture = Mixture(dims.n_pathways, h, dims.n_out)

    def _outputs(self, states: torch.Tensor, maps: torch.Tensor) -> Outputs:
        logits, usage = self.mixture(states)
        return Outputs(logits, usage @ states, usage @ maps,
                       {"usage": usage, "experts": states, "expert_attention": maps})


class MoPETeacher(_Experts):
    info = CATALOG["mope_teacher"]

    def __init__(self, dims: ModelDims):
        super().__init__(dims)
        h = dims.hidden
        self.identity = nn.Parameter(torch.randn(dims.n_pathways, h) / math.sqrt(h))
        self.direction = nn.Parameter(torch.randn(dims.n_pathways, h) / math.sqrt(h))
        self.expert = nn.Sequential(nn.Linear(2 * h, h), nn.ReLU(), nn.Dropout(dims.dropout))

    def forward(self, inputs: Inputs) -> Outputs:
        assert inputs.features is not None and inputs.pathways is not None
        tokens = self.identity + inputs.pathways.unsqueeze(1) * self.direction
        read, maps = self.reader(tokens, self.patches(inputs.features))
        return self._outputs(self.expert(torch.cat([tokens, read], dim=1)), maps)


class MoPE(_Experts):
    info = CATALOG["mope"]

    def __init__(self, dims: ModelDims, reconstructibility: list[float] | None = None,
                 usage_weight: float = 1.0, expert_weight: float = 1.0,
                 usage_target: UsageTarget = "teacher"):
        super().__init__(dims)
        h = dims.hidden
        self.queries = nn.Parameter(torch.randn(dims.n_pathways, h) / math.sqrt(h))
        self.expert = nn.Sequential(nn.Linear(h, h), nn.ReLU(), nn.Dropout(dims.dropout))
        w = torch.ones(dims.n_pathways) if reconstructibility is None else \
            torch.tensor(reconstructibility, dtype=torch.float32)
        self.register_buffer("expert_w", w / w.mean() if w.sum() > 0 else w)
        self.usage_weight, self.expert_weight = usage_weight, expert_weight
        if usage_target not in get_args(UsageTarget):
            raise ValueError(f"mope: usage_target must be one of {get_args(UsageTarget)}, "
                             f"got {usage_target!r}")
        self.usage_target = usage_target

    def structure(self) -> dict[str, object]:
        return {"reconstructibility": self.expert_w.tolist()}

    def forward(self, inputs: Inputs) -> Outputs:
        assert inputs.features is not None
        read, maps = self.reader(self.queries, self.patches(inputs.features))
        return self._outputs(self.expert(read) + read, maps)

    def usage_target_of(self, teacher_usage: torch.Tensor) -> torch.Tensor:
        """The distribution the student's usage is pulled towards (see ``usage_target``)."""
        if self.usage_target == "teacher" or self.expert_w.sum() <= 0:
            return teacher_usage
        weighted = teacher_usage * self.expert_w
        return weighted / weighted.sum()

    def extra_losses(self, out: Outputs, teacher_out: Outputs | None, task_loss: TaskLoss
                     ) -> dict[str, torch.Tensor]:
        if teacher_out is None:
            return {}
        u_t = self.usage_target_of(teacher_out.extras["usage"].detach())
        u_s = out.extras["usage"]
        kl = (u_t * (torch.log(u_t + 1e-12) - torch.log(u_s + 1e-12))).sum()
        gap = ((out.extras["experts"] - teacher_out.extras["experts"].detach()) ** 2).mean(dim=1)
        return {"usage_kl": self.usage_weight * kl,
                "expert_align": self.expert_weight * (self.expert_w * gap).mean()}
