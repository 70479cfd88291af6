"""G-HANet (Wang et al., histo-genomic knowledge distillation).

Where the paper leaves a gap, our choices (METHODS.md fixes the rest):

* **Groups.** The paper groups *genes* by functional family (MCAT's 6 families). With
  ``privileged.source: genes`` that is what happens: the privileged vector is the per-fold
  normalised expression of the collection's genes (rna/genes.py) and each gene set is one
  group (:func:`histodistill.rna.gene_columns.column_groups`; with MCAT's ``signatures.csv`` as the
  collection, the published setting). With pathway scores or covariates there are no given
  groups, so the vector is split into ``n_groups`` groups by hierarchical clustering of its
  columns' correlation across the fold's *training* patients (:func:`privileged_groups`).
  Either way each group is encoded by its own SNN into ``g_k``.
* **Genomic encoders' training signal.** The reconstruction target ``g_k`` is detached, so the
  encoders learn from an auxiliary survival head on ``mean_k g_k`` (the paper trains the
  genomic path end to end with the task loss; this is that path).
* **Cross-modal associating branch (CAB).** K learnable queries read the patch bag by 4-head
  cross-attention into ``r_k``; loss = ``recon_weight`` x mean_k[MSE + (1 - cos)^gamma].
* **Hyper-attention survival branch (HSB).** Morphology attention = gated ABMIL attention;
  genome-informed attention = for each ``r_k``, a softmax over its ``top_k`` highest-scoring
  patches (scaled dot product), averaged over groups. They are fused by a per-patient convex
  weight ``lambda = sigmoid(MLP([z_morph, z_genome]))``; the head reads the fused pooled
  patches concatenated with ``mean_k r_k``.
* **Inference** uses CAB + HSB only: the logits never depend on the privileged vector.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from histodistill.models.base import Inputs, ModelDims, Outputs, RiskModel, TaskLoss
from histodistill.models.catalog import CATALOG
from histodistill.models.layers import SNN, GatedAttention, QueryReader, cosine_mse, patch_encoder


def privileged_groups(x_train: np.ndarray, n_groups: int) -> list[list[int]]:
    """Columns of ``x_train`` (training patients x K) in ``n_groups`` groups: average-linkage
    clustering on 1 - |correlation|; groups ordered by their first column."""
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    k = x_train.shape[1]
    n_groups = max(1, min(n_groups, k))
    if n_groups == 1 or k < 2 or len(x_train) < 3:
        return contiguous_groups(k, n_groups)
    corr = np.nan_to_num(np.corrcoef(x_train, rowvar=False), nan=0.0)
    dist = np.clip(1.0 - np.abs(corr), 0.0, None)
    np.fill_diagonal(dist, 0.0)
    labels = fcluster(linkage(squareform(dist, checks=False), "average"), n_groups,
                      criterion="maxclust")
    groups = [np.flatnonzero(labels == c).tolist() for c in np.unique(labels)]
    return sorted(groups, key=lambda g: g[0])


def contiguous_groups(k: int, n_groups: int) -> list[list[int]]:
    return [g.tolist() for g in np.array_split(np.arange(k), max(1, min(n_groups, k)))]


class GHANet(RiskModel):
    info = CATALOG["ghanet"]

    def __init__(self, dims: ModelDims, groups: list[list[int]] | None = None,
                 n_groups: int = 6, recon_weight: float = 0.3, recon_gamma: float = 1.0,
                 top_k: int = 16):
        super().__init__()
        h = dims.hidden
        self.groups = groups or contiguous_groups(dims.n_pathways, n_groups)
        self.recon_weight, self.recon_gamma, self.top_k = recon_weight, recon_gamma, top_k
        self.genomic = nn.ModuleList(SNN(len(g), h, dropout=dims.dropout) for g in self.groups)
        self.genomic_head = nn.Linear(h, dims.n_out)
        self.patches = patch_encoder(dims.feature_dim, h, dims.dropout)
        self.queries = nn.Parameter(torch.randn(len(self.groups), h) / math.sqrt(h))
        self.cab = QueryReader(h, dropout=dims.dropout)
        self.morphology = GatedAttention(h, max(8, h // 2), dims.dropout)
        self.q_proj, self.k_proj = nn.Linear(h, h), nn.Linear(h, h)
        self.fuse_gate = nn.Sequential(nn.Linear(2 * h, max(8, h // 2)), nn.ReLU(),
                                       nn.Linear(max(8, h // 2), 1))
        self.head = nn.Sequential(nn.Linear(2 * h, h), nn.ReLU(), nn.Dropout(dims.dropout),
                                  nn.Linear(h, dims.n_out))

    def structure(self) -> dict[str, object]:
        return {"groups": self.groups}

    def forward(self, inputs: Inputs) -> Outputs:
        assert inputs.features is not None
        h = self.patches(inputs.features)
        r, group_maps = self.cab(self.queries, h)
        a_morph = self.morphology(h)
        scores = self.q_proj(r) @ self.k_proj(h).T / math.sqrt(h.shape[1])
        top = scores.topk(min(self.top_k, h.shape[0]), dim=1)
        masked = torch.full_like(scores, float("-inf")).scatter(1, top.indices, top.values)
        a_genome = torch.softmax(masked, dim=1).mean(dim=0)
        lam = torch.sigmoid(self.fuse_gate(torch.cat([a_morph @ h, a_genome @ h])))
        attention = lam * a_morph + (1 - lam) * a_genome
        z = torch.cat([attention @ h, r.mean(dim=0)])
        extras = {"reconstruction": r, "group_attention": group_maps}
        if inputs.pathways is not None:
            extras["genomic"] = torch.stack([enc(inputs.pathways[idx]) for enc, idx
                                             in zip(self.genomic, self.groups, strict=True)])
        return Outputs(self.head(z), z, attention, extras)

    def extra_losses(self, out: Outputs, teacher_out: Outputs | None, task_loss: TaskLoss
                     ) -> dict[str, torch.Tensor]:
        g = out.extras.get("genomic")
        if g is None:  # patient without privileged data: task loss only
            return {}
        recon = cosine_mse(out.extras["reconstruction"], g.detach(), self.recon_gamma)
        return {"recon": self.recon_weight * recon,
                "genomic_task": task_loss(self.genomic_head(g.mean(dim=0)))}
