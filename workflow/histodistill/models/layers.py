"""Building blocks shared by every model: SNN for tabular RNA, gated attention MIL for bags."""

from __future__ import annotations

import math

import torch
from torch import nn


class SNN(nn.Module):
    """Self-normalising MLP (Klambauer et al. 2017): Linear -> SELU -> AlphaDropout blocks,
    LeCun-normal initialisation so activations keep zero mean and unit variance."""

    def __init__(self, d_in: int, hidden: int, n_layers: int = 2, dropout: float = 0.25):
        super().__init__()
        layers: list[nn.Module] = []
        d = d_in
        for _ in range(n_layers):
            layers += [nn.Linear(d, hidden), nn.SELU(), nn.AlphaDropout(dropout)]
            d = hidden
        self.net = nn.Sequential(*layers)
        for m in self.net:
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 1.0 / math.sqrt(m.in_features))
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class GatedAttention(nn.Module):
    """a_i = softmax_i(w^T (tanh(V h_i) * sigmoid(U h_i))) (Ilse et al. 2018)."""

    def __init__(self, d: int, d_attn: int, dropout: float = 0.0):
        super().__init__()
        self.v = nn.Sequential(nn.Linear(d, d_attn), nn.Tanh(), nn.Dropout(dropout))
        self.u = nn.Sequential(nn.Linear(d, d_attn), nn.Sigmoid(), nn.Dropout(dropout))
        self.w = nn.Linear(d_attn, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """(N, d) -> attention weights (N,) summing to one."""
        return torch.softmax(self.w(self.v(h) * self.u(h)).squeeze(-1), dim=0)


class ABMIL(nn.Module):
    """Patch features (N, D) -> patient embedding (hidden,) and attention (N,)."""

    def __init__(self, d_in: int, hidden: int, dropout: float = 0.25):
        super().__init__()
        self.fc = patch_encoder(d_in, hidden, dropout)
        self.attention = GatedAttention(hidden, max(8, hidden // 2), dropout)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.fc(x)
        a = self.attention(h)
        return a @ h, a


class QueryReader(nn.Module):
    """Q queries read a bag by multi-head cross-attention: (Q, d) x (N, d) -> (Q, d) states
    and (Q, N) attention maps (averaged over heads), one map per query."""

    def __init__(self, d: int, n_heads: int = 4, dropout: float = 0.0):
        super().__init__()
        heads = next(h for h in (n_heads, 4, 2, 1) if d % h == 0)
        self.attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.norm = nn.LayerNorm(d)

    def forward(self, queries: torch.Tensor, h: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        read, maps = self.attn(queries.unsqueeze(0), h.unsqueeze(0), h.unsqueeze(0),
                               need_weights=True, average_attn_weights=True)
        return self.norm(read.squeeze(0) + queries), maps.squeeze(0)


def patch_encoder(d_in: int, hidden: int, dropout: float) -> nn.Module:
    """The per-patch projection every MIL model starts with."""
    return nn.Sequential(nn.Linear(d_in, hidden), nn.ReLU(), nn.Dropout(dropout))


def cosine_mse(pred: torch.Tensor, target: torch.Tensor, gamma: float = 1.0) -> torch.Tensor:
    """G-HANet's reconstruction error per row: MSE + (1 - cos)^gamma, averaged over rows."""
    mse = ((pred - target) ** 2).mean(dim=-1)
    cos = torch.nn.functional.cosine_similarity(pred, target, dim=-1)
    return (mse + (1.0 - cos).clamp_min(0.0) ** gamma).mean()


class CrossAttention(nn.Module):
    """Multi-head cross-attention that also returns its attention *logits*: (Q, d) queries x
    (N, d) context -> (Q, d) read-out and (heads, Q, N) scaled dot products (pre-softmax)."""

    def __init__(self, d: int, n_heads: int = 4, dropout: float = 0.0):
        super().__init__()
        self.heads = next(h for h in (n_heads, 4, 2, 1) if d % h == 0)
        self.q = nn.Linear(d, d, bias=False)
        self.k = nn.Linear(d, d, bias=False)
        self.v = nn.Linear(d, d, bias=False)
        self.out = nn.Linear(d, d)
        self.dropout = nn.Dropout(dropout)

    def forward(self, queries: torch.Tensor, context: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        def split(x: torch.Tensor) -> torch.Tensor:  # (n, d) -> (heads, n, d / heads)
            return x.reshape(x.shape[0], self.heads, -1).transpose(0, 1)

        q, k, v = split(self.q(queries)), split(self.k(context)), split(self.v(context))
        logits = q @ k.transpose(1, 2) / math.sqrt(q.shape[-1])
        read = self.dropout(torch.softmax(logits, dim=-1)) @ v  # (heads, Q, d / heads)
        return self.out(read.transpose(0, 1).reshape(queries.shape[0], -1)), logits


class FeedForward(nn.Module):
    """Transformer feed-forward with a GEGLU gate (Shazeer 2020): d -> mult*d -> d."""

    def __init__(self, d: int, mult: int = 4, dropout: float = 0.0):
        super().__init__()
        self.up = nn.Linear(d, 2 * mult * d)
        self.down = nn.Sequential(nn.Dropout(dropout), nn.Linear(mult * d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, gate = self.up(x).chunk(2, dim=-1)
        return self.down(a * torch.nn.functional.gelu(gate))
