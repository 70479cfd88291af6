"""Backbones of the registered extractors and the ``Encoder`` that pools them.

An ``Encoder`` takes uint8 tiles (B, 3, H, W), normalises them on the device and returns
float32 features (B, D), whatever precision the backbone ran in.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from histodistill.features.registry import ExtractorSpec


class AttentionalPooler(nn.Module):
    """CoCa-style pooling: learned queries attend over the trunk's tokens (CONCH)."""

    def __init__(self, d_model: int, context_dim: int, n_head: int, n_queries: int) -> None:
        super().__init__()
        self.heads = n_head
        self.query = nn.Parameter(torch.randn(n_queries, d_model))
        self.ln_q = nn.LayerNorm(d_model)
        self.ln_k = nn.LayerNorm(context_dim)
        self.to_q = nn.Linear(d_model, d_model, bias=False)
        self.to_kv = nn.Linear(context_dim, 2 * d_model, bias=False)
        self.to_out = nn.Linear(d_model, d_model, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        q = self.to_q(self.ln_q(self.query)).expand(tokens.shape[0], -1, -1)
        k, v = self.to_kv(self.ln_k(tokens)).chunk(2, dim=-1)
        q, k, v = (t.unflatten(-1, (self.heads, -1)).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v)  # scale: head_dim ** -0.5
        return self.to_out(out.transpose(1, 2).flatten(2))


def dino_pos_embed(pos: torch.Tensor, grid: int) -> torch.Tensor:
    """Position embeddings (1, 1 + S*S, D) of an S x S grid, bicubically resized to
    ``grid`` x ``grid`` the way DINO/iBOT do (scale factor (grid + 0.1) / S)."""
    side = math.isqrt(pos.shape[1] - 1)
    if side == grid:
        return pos
    patch = pos[:, 1:].reshape(1, side, side, -1).permute(0, 3, 1, 2)
    scale = (grid + 0.1) / side
    patch = F.interpolate(patch, scale_factor=(scale, scale), mode="bicubic")
    return torch.cat([pos[:, :1], patch.permute(0, 2, 3, 1).reshape(1, grid * grid, -1)], dim=1)


class ConchV15Tower(nn.Module):
    """CONCH v1.5's vision tower: an iBOT ViT-L/16 trunk (224 px position grid, resized to
    448 px inputs), attentional pooling to 768 and a final LayerNorm. Parameter names follow
    the released ``pytorch_model_vision.bin``."""

    def __init__(self, trunk: nn.Module) -> None:
        super().__init__()
        self.trunk = trunk
        self.attn_pool_contrast = AttentionalPooler(768, 1024, n_head=8, n_queries=1)
        self.ln_contrast = nn.LayerNorm(768)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.trunk
        tokens = t.patch_embed.proj(x)
        grid = tokens.shape[-1]
        tokens = tokens.flatten(2).transpose(1, 2)
        tokens = torch.cat([t.cls_token.expand(len(tokens), -1, -1), tokens], dim=1)
        tokens = tokens + dino_pos_embed(t.pos_embed, grid)
        tokens = t.norm(t.blocks(tokens))
        return self.ln_contrast(self.attn_pool_contrast(tokens)[:, 0])


def build_backbone(spec: ExtractorSpec) -> nn.Module:
    """The backbone of ``spec`` with timm's random initialisation, on the current default
    device (``with torch.device("meta")`` builds it without allocating, for loading)."""
    import timm

    kwargs = dict(spec.timm_kwargs)
    if isinstance(kwargs.get("mlp_layer"), str):
        kwargs["mlp_layer"] = getattr(timm.layers, kwargs["mlp_layer"])
    if spec.pooling == "stage_avg":
        return timm.create_model(spec.arch, pretrained=False, features_only=True,
                                 out_indices=(spec.stage,), **kwargs)
    if spec.pooling == "pooled" and spec.builder == "timm":
        return timm.create_model(spec.arch, pretrained=False, num_classes=0, **kwargs)
    trunk = timm.create_model(spec.arch, pretrained=False, num_classes=0, global_pool="",
                              **kwargs)
    return ConchV15Tower(trunk) if spec.builder == "conch_v15" else trunk


class Encoder(nn.Module):
    """uint8 tiles (B, 3, H, W) -> float32 features (B, D); normalisation on the device."""

    def __init__(self, spec: ExtractorSpec, backbone: nn.Module) -> None:
        super().__init__()
        self.spec = spec
        self.backbone = backbone
        self.prefix_tokens = int(getattr(backbone, "num_prefix_tokens", 1))
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1) * 255.0)

    def forward(self, tiles: torch.Tensor) -> torch.Tensor:
        x = (tiles.float() - self.mean) / self.std
        pooling = self.spec.pooling
        if pooling == "stage_avg":
            out = self.backbone(x)[-1].mean(dim=(2, 3))
        elif pooling == "token":
            out = self.backbone(x)[:, 0]
        elif pooling == "token_mean":
            tokens = self.backbone(x)
            out = torch.cat([tokens[:, 0], tokens[:, self.prefix_tokens:].mean(dim=1)], dim=-1)
        else:
            out = self.backbone(x)
        return out.float()
