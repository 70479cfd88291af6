"""One registry of patch encoders and one factory that builds them from local weights.

Weights always come from a local file (safetensors preferred, otherwise a state dict read with
``torch.load(weights_only=True)``) or, for demos and tests, from a seeded random
initialisation - which every output then declares. Nothing is ever downloaded.
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from histodistill.errors import HistodistillError, WeightsError
from histodistill.provenance import file_sha256

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ExtractorSpec:
    name: str
    arch: str  # timm model name
    dim: int
    pooling: Literal["stage_avg", "pre_logits"]
    stage: int | None = None  # stage_avg: index of the CNN stage whose output is pooled
    input_px: int | None = None  # None: any tile size (CNNs); else tiles must be this size
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    recommended_mpp: float | None = None
    licence: str = ""
    weights_hint: str = ""
    timm_kwargs: dict[str, Any] = field(default_factory=dict)


REGISTRY: dict[str, ExtractorSpec] = {
    spec.name: spec for spec in (
        ExtractorSpec(
            "resnet50_trunc", "resnet50", 1024, "stage_avg", stage=3, recommended_mpp=0.5,
            licence="torchvision/timm ImageNet weights: BSD-3-Clause / Apache-2.0",
            weights_hint="save timm's resnet50.tv_in1k state dict as a .safetensors file"),
        ExtractorSpec(
            "resnet18_trunc", "resnet18", 256, "stage_avg", stage=3, recommended_mpp=1.0,
            licence="torchvision/timm ImageNet weights: BSD-3-Clause / Apache-2.0",
            weights_hint="save timm's resnet18.tv_in1k state dict as a .safetensors file"),
    )
}


def get_spec(name: str) -> ExtractorSpec:
    """Look up a registered extractor, or ``timm:<model>`` for any timm architecture."""
    if name in REGISTRY:
        return REGISTRY[name]
    if name.startswith("timm:"):
        import timm

        arch = name.removeprefix("timm:")
        if arch not in timm.list_models():
            raise HistodistillError(f"extractor {name!r}: timm has no model {arch!r}")
        cfg = timm.models.get_pretrained_cfg(arch)
        mean = tuple(cfg.mean) if cfg else IMAGENET_MEAN
        std = tuple(cfg.std) if cfg else IMAGENET_STD
        model = timm.create_model(arch, pretrained=False, num_classes=0)
        return ExtractorSpec(name, arch, int(model.num_features), "pre_logits",
                             mean=mean, std=std,  # type: ignore[arg-type]
                             weights_hint=f"a state dict of timm's {arch}")
    raise HistodistillError(f"unknown extractor {name!r}; registered: {sorted(REGISTRY)} "
                            "or 'timm:<model name>'")


class Encoder(nn.Module):
    """uint8 tiles (B, 3, H, W) -> features (B, D); normalisation happens on the device."""

    def __init__(self, spec: ExtractorSpec, backbone: nn.Module) -> None:
        super().__init__()
        self.spec = spec
        self.backbone = backbone
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1) * 255.0)

    def forward(self, tiles: torch.Tensor) -> torch.Tensor:
        x = (tiles.float() - self.mean) / self.std
        if self.spec.pooling == "stage_avg":
            return self.backbone(x)[-1].mean(dim=(2, 3))
        return self.backbone(x)


@dataclass(frozen=True)
class LoadedExtractor:
    encoder: Encoder
    spec: ExtractorSpec
    weights_sha256: str
    random_weights: bool
    weights_source: str


def _backbone(spec: ExtractorSpec) -> nn.Module:
    import timm

    if spec.pooling == "stage_avg":
        return timm.create_model(spec.arch, pretrained=False, features_only=True,
                                 out_indices=(spec.stage,), **spec.timm_kwargs)
    return timm.create_model(spec.arch, pretrained=False, num_classes=0, **spec.timm_kwargs)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise WeightsError(f"{path}: expected a state dict, found {type(state).__name__}")
    return state


def load_weights(backbone: nn.Module, spec: ExtractorSpec, path: Path) -> None:
    """Load a state dict strictly: every parameter of the backbone must be in the file.

    Keys of layers a truncated CNN drops (later stages, classifier) may be present and are
    ignored; any other extra or missing key, or a shape mismatch, is an error.
    """
    try:
        state = read_state_dict(path)
    except WeightsError:
        raise
    except Exception as exc:
        raise WeightsError(f"cannot read weights {path} for extractor {spec.name!r}: {exc}") \
            from None
    own = backbone.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or (unexpected and spec.pooling != "stage_avg"):
        raise WeightsError(
            f"{path} does not match extractor {spec.name!r} ({spec.arch}): "
            f"{len(missing)} missing keys (e.g. {missing[:3]}), {len(unexpected)} unexpected "
            f"(e.g. {unexpected[:3]}). Expected: {spec.weights_hint or spec.arch}")
    wrong = [k for k in own if tuple(state[k].shape) != tuple(own[k].shape)]
    if wrong:
        raise WeightsError(f"{path}: shape mismatch for {spec.name!r} at {wrong[:3]}")
    backbone.load_state_dict({k: state[k] for k in own}, strict=True)


def build_extractor(name: str, weights: str | Path | None, seed: int = 0) -> LoadedExtractor:
    """Build extractor ``name`` in eval mode with weights from ``weights`` (a local file) or,
    when ``weights`` is None, a random initialisation seeded by ``seed``."""
    spec = get_spec(name)
    torch.manual_seed(seed)
    backbone = _backbone(spec)
    if weights is None:
        buf = io.BytesIO()
        torch.save(backbone.state_dict(), buf)
        sha = hashlib.sha256(buf.getvalue()).hexdigest()
        source = f"RANDOM initialisation (seed {seed}) - demo/test only, not a trained encoder"
        random_weights = True
        log.warning("extractor %s uses RANDOM weights: %s", name, source)
    else:
        path = Path(weights)
        if not path.is_file():
            raise WeightsError(f"weights for extractor {name!r} not found at {path}; obtain "
                               f"them as: {spec.weights_hint or spec.arch} and set "
                               "features.weights in the config (never downloaded at run time)")
        load_weights(backbone, spec, path)
        sha, source, random_weights = file_sha256(path), str(path), False
    encoder = Encoder(spec, backbone).eval()
    for p in encoder.parameters():
        p.requires_grad_(False)
    return LoadedExtractor(encoder, spec, sha, random_weights, source)
