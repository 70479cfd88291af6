"""Read a local weight file and load it, strictly, into a registered backbone.

Files: ``.safetensors`` (preferred), otherwise a state dict read with
``torch.load(weights_only=True)`` (also inside a ``{"state_dict": ...}`` or ``{"model": ...}``
wrapper). Keys are matched exactly after two documented adaptations: a prefix every key
shares (``module.``, ``model.``, ...) is dropped when that is what makes them match, and a
Hugging Face ``transformers`` DINOv2 layout (Phikon-v2) is converted to timm's.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from histodistill.errors import WeightsError
from histodistill.features.registry import ExtractorSpec


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:  # memory-mapped: a 4 GB file is not read twice
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # legacy (pre-zip) torch.save format cannot be mapped
        state = torch.load(path, map_location="cpu", weights_only=True)
    for wrapper in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: expected a state dict, found {type(state).__name__}")
    return state


# transformers' DINOv2 names -> timm's, per block; both the names in published checkpoints
# (attention.attention.query, ...) and those of transformers >= 5 (attention.q_proj, ...)
_HF_BLOCK = {
    "norm1": "norm1", "norm2": "norm2", "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2",
    "layer_scale1": "ls1", "layer_scale2": "ls2",
    "attention.output.dense": "attn.proj", "attention.o_proj": "attn.proj",
}
_HF_QKV = {"q": ("attention.attention.query", "attention.q_proj"),
           "k": ("attention.attention.key", "attention.k_proj"),
           "v": ("attention.attention.value", "attention.v_proj")}
_HF_TOP = {
    "embeddings.cls_token": "cls_token", "embeddings.position_embeddings": "pos_embed",
    "embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
    "embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
    "layernorm.weight": "norm.weight", "layernorm.bias": "norm.bias",
}


def hf_dinov2_to_timm(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A transformers ``Dinov2Model`` state dict as timm ``VisionTransformer`` keys (the
    separate q/k/v projections are stacked into timm's fused ``qkv``; ``mask_token``, used
    only in training, is dropped)."""
    out: dict[str, torch.Tensor] = {}
    qkv: dict[tuple[int, str], dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        key = key.removeprefix("dinov2.")
        if key in _HF_TOP:
            out[_HF_TOP[key]] = value
            continue
        if key == "embeddings.mask_token":
            continue
        m = re.fullmatch(r"encoder\.layer\.(\d+)\.(.+)\.(weight|bias|lambda1)", key)
        if m is None:
            out[key] = value  # left for the strict check to report
            continue
        block, name, kind = int(m.group(1)), m.group(2), m.group(3)
        part = next((p for p, names in _HF_QKV.items() if name in names), None)
        if part is not None:
            qkv.setdefault((block, kind), {})[part] = value
        elif name in _HF_BLOCK:  # a layer scale's lambda1 is timm's gamma
            out[f"blocks.{block}.{_HF_BLOCK[name]}.{kind.replace('lambda1', 'gamma')}"] = value
        else:
            out[key] = value
    for (block, kind), parts in qkv.items():
        if set(parts) != {"q", "k", "v"}:
            raise WeightsError(f"block {block}: {kind} of {sorted(parts)} only, not q, k, v")
        out[f"blocks.{block}.attn.qkv.{kind}"] = torch.cat([parts["q"], parts["k"], parts["v"]])
    return out


def _strip_shared_prefix(state: dict[str, torch.Tensor], own: set[str]) -> dict[str, torch.Tensor]:
    if not state or own & set(state):
        return state
    first = next(iter(state))
    for end in [m.end() for m in re.finditer(r"\.", first)]:
        prefix = first[:end]
        if all(k.startswith(prefix) for k in state):
            stripped = {k[end:]: v for k, v in state.items()}
            if own & set(stripped):
                return stripped
    return state


def load_weights(backbone: nn.Module, spec: ExtractorSpec, path: Path) -> None:
    """Load ``path`` into ``backbone`` (which may live on the meta device: tensors are
    assigned, not copied). Every parameter and buffer must be in the file with its shape;
    extra keys are an error, except the later stages and classifier of a truncated CNN."""
    try:
        state = read_state_dict(path)
    except WeightsError:
        raise
    except Exception as exc:
        raise WeightsError(f"cannot read weights {path} for extractor {spec.name!r}: {exc}") \
            from None
    own = backbone.state_dict(keep_vars=True)
    if spec.layout == "hf_dinov2" and any(k.startswith(("embeddings.", "dinov2.embeddings."))
                                          for k in state):
        state = hf_dinov2_to_timm(state)
    state = _strip_shared_prefix(state, set(own))
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or (unexpected and spec.pooling != "stage_avg"):
        raise WeightsError(
            f"{path} does not match extractor {spec.name!r} ({spec.arch}): "
            f"{len(missing)} missing keys (e.g. {missing[:3]}), {len(unexpected)} unexpected "
            f"(e.g. {unexpected[:3]}). Expected: {spec.weights_hint or spec.arch}")
    wrong = [k for k in own if tuple(state[k].shape) != tuple(own[k].shape)]
    if wrong:
        raise WeightsError(f"{path}: shape mismatch for {spec.name!r} at {wrong[:3]} "
                           f"(file {tuple(state[wrong[0]].shape)}, model "
                           f"{tuple(own[wrong[0]].shape)})")
    backbone.load_state_dict({k: state[k].to(own[k].dtype) for k in own}, strict=True,
                             assign=True)
