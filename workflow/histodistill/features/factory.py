"""The one factory of patch encoders: a registry entry plus local weights -> an ``Encoder``.

Weights always come from a local file or, for demos and tests, from a seeded random
initialisation that every output then declares. Nothing is ever downloaded.
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from histodistill.errors import WeightsError
from histodistill.features.encoders import Encoder, build_backbone
from histodistill.features.registry import ExtractorSpec, get_spec
from histodistill.features.weights import load_weights
from histodistill.provenance import file_sha256

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedExtractor:
    encoder: Encoder
    spec: ExtractorSpec
    weights_sha256: str
    random_weights: bool
    weights_source: str


def _from_file(spec: ExtractorSpec, path: Path) -> torch.nn.Module:
    """Build on the meta device (no memory, no initialisation: a 1.1B-parameter ViT in ~1 s
    rather than ~30 s) and take the file's tensors as the parameters."""
    with torch.device("meta"):
        backbone = build_backbone(spec)
    stored = backbone.state_dict()
    if any(name not in stored for name, _ in backbone.named_buffers()):
        # non-persistent buffers (e.g. a Swin's position index) are computed when the model
        # is built and are not in any file: build for real
        backbone = build_backbone(spec)
    load_weights(backbone, spec, path)
    return backbone


def build_extractor(name: str, weights: str | Path | None, seed: int = 0) -> LoadedExtractor:
    """Build extractor ``name`` in eval mode with weights from ``weights`` (a local file) or,
    when ``weights`` is None, a random initialisation seeded by ``seed``."""
    spec = get_spec(name)
    if weights is None:
        torch.manual_seed(seed)
        backbone = build_backbone(spec)
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
        backbone = _from_file(spec, path)
        sha, source, random_weights = file_sha256(path), str(path), False
    encoder = Encoder(spec, backbone).eval()
    for p in encoder.parameters():
        p.requires_grad_(False)
    return LoadedExtractor(encoder, spec, sha, random_weights, source)
