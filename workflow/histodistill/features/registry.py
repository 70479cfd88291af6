"""One registry of patch encoders: what each model is, what it expects and where its weights
come from. Building a model from an entry is ``features.factory.build_extractor``.

Every entry says how tiles must be prepared (``input_px`` at ``mpp`` um/px, normalised with
``mean``/``std``), what is pooled into the feature vector and its width ``dim``, the precision
the authors run it in, and the licence of its weights. Weights are never downloaded: the
``weights_hint`` says which file to fetch once (on a machine with network) and where to put it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from histodistill.errors import HistodistillError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HOPTIMUS_MEAN = (0.707223, 0.578729, 0.703617)
HOPTIMUS_STD = (0.211883, 0.230117, 0.177517)

# What the backbone's output is reduced to:
#   stage_avg   mean over space of CNN stage ``stage`` (truncated ResNets: the 1024-d baseline)
#   token       the class token after the final norm (UNI, H-optimus, GigaPath, Phikon-v2)
#   token_mean  class token concatenated with the mean of the patch tokens, registers left
#               out (Virchow2: 2 x 1280 = 2560)
#   pooled      the backbone pools itself (CONCH v1.5's attentional pooler; any timm model)
Pooling = Literal["stage_avg", "token", "token_mean", "pooled"]
# How the backbone is built: a timm model (features_only for stage_avg), or CONCH v1.5's tower.
Builder = Literal["timm", "conch_v15"]
# The key layout of the weight file, converted to the backbone's on load.
Layout = Literal["timm", "hf_dinov2"]
Precision = Literal["fp32", "bf16", "fp16"]


@dataclass(frozen=True)
class ExtractorSpec:
    name: str
    arch: str  # timm model name (for conch_v15: of its trunk)
    dim: int
    pooling: Pooling
    builder: Builder = "timm"
    stage: int | None = None  # stage_avg: index of the CNN stage whose output is pooled
    input_px: int | None = None  # None: any tile size (CNNs); else tiles must be this size
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    mpp: float | None = None  # um/px the model was trained at (0.5 ~ 20x, 1.0 ~ 10x)
    precision: Precision = "fp32"  # autocast dtype on a GPU (CPU always runs fp32)
    params_m: int = 0  # parameters, millions (for memory planning and the docs)
    licence: str = ""
    weights_hint: str = ""
    layout: Layout = "timm"
    timm_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def magnification(self) -> str:
        """The usual name of ``mpp`` (10 / mpp, e.g. 0.5 um/px -> '20x')."""
        return f"{10 / self.mpp:g}x" if self.mpp else "any"


def _hf(repo: str, filename: str, licence: str) -> str:
    return (f"download {filename} from https://huggingface.co/{repo} (gated: accept the "
            f"licence, {licence}) once, on a machine with network, copy it under resources/ "
            "and set features.weights to its path")


_CC_NC_ND = "CC-BY-NC-ND-4.0, non-commercial research use"
_TV = "torchvision/timm ImageNet weights: BSD-3-Clause / Apache-2.0"
_VIT_L16 = dict(img_size=224, patch_size=16, init_values=1e-5)
_SWIGLU = dict(mlp_layer="SwiGLUPacked", act_layer="silu")

REGISTRY: dict[str, ExtractorSpec] = {
    spec.name: spec for spec in (
        ExtractorSpec(
            "resnet50_trunc", "resnet50", 1024, "stage_avg", stage=3, mpp=0.5, params_m=9,
            licence=_TV, weights_hint="save timm's resnet50.tv_in1k state dict as a "
            ".safetensors file (the classic CLAM baseline: ResNet50 up to layer 3)"),
        ExtractorSpec(
            "resnet18_trunc", "resnet18", 256, "stage_avg", stage=3, mpp=1.0, params_m=3,
            licence=_TV,
            weights_hint="save timm's resnet18.tv_in1k state dict as a .safetensors file"),
        ExtractorSpec(
            "uni", "vit_large_patch16_224", 1024, "token", input_px=224, mpp=0.5,
            precision="fp16", params_m=303, licence=_CC_NC_ND,
            weights_hint=_hf("MahmoodLab/UNI", "pytorch_model.bin", _CC_NC_ND),
            timm_kwargs=_VIT_L16),
        ExtractorSpec(
            "uni2_h", "vit_giant_patch14_224", 1536, "token", input_px=224, mpp=0.5,
            precision="bf16", params_m=681, licence=_CC_NC_ND,
            weights_hint=_hf("MahmoodLab/UNI2-h", "pytorch_model.bin", _CC_NC_ND),
            timm_kwargs=dict(img_size=224, patch_size=14, depth=24, num_heads=24,
                             embed_dim=1536, mlp_ratio=2.66667 * 2, init_values=1e-5,
                             no_embed_class=True, reg_tokens=8, **_SWIGLU)),
        ExtractorSpec(
            "conch_v15", "vit_large_patch16_224", 768, "pooled", builder="conch_v15",
            input_px=448, mpp=0.5, precision="fp16", params_m=307, licence=_CC_NC_ND,
            weights_hint=_hf("MahmoodLab/conchv1_5", "pytorch_model_vision.bin", _CC_NC_ND),
            timm_kwargs=dict(img_size=224, patch_size=16, init_values=1.0)),
        ExtractorSpec(
            "virchow2", "vit_huge_patch14_224", 2560, "token_mean", input_px=224, mpp=0.5,
            precision="fp16", params_m=631, licence=_CC_NC_ND,
            weights_hint=_hf("paige-ai/Virchow2", "pytorch_model.bin", _CC_NC_ND),
            timm_kwargs=dict(img_size=224, init_values=1e-5, mlp_ratio=5.3375, reg_tokens=4,
                             **_SWIGLU)),
        ExtractorSpec(
            "h_optimus_0", "vit_giant_patch14_reg4_dinov2", 1536, "token", input_px=224,
            mean=HOPTIMUS_MEAN, std=HOPTIMUS_STD, mpp=0.5, precision="fp16", params_m=1135,
            licence="Apache-2.0",
            weights_hint=_hf("bioptimus/H-optimus-0", "model.safetensors", "Apache-2.0"),
            timm_kwargs=dict(img_size=224, init_values=1e-5)),
        ExtractorSpec(
            "h_optimus_1", "vit_giant_patch14_reg4_dinov2", 1536, "token", input_px=224,
            mean=HOPTIMUS_MEAN, std=HOPTIMUS_STD, mpp=0.5, precision="fp16", params_m=1135,
            licence="Bioptimus terms on the model card (gated)",
            weights_hint=_hf("bioptimus/H-optimus-1", "model.safetensors",
                             "the terms on its model card"),
            timm_kwargs=dict(img_size=224, init_values=1e-5)),
        ExtractorSpec(
            "phikon_v2", "vit_large_patch16_224", 1024, "token", input_px=224, mpp=0.5,
            precision="fp32", params_m=303, layout="hf_dinov2",
            licence="Owkin non-commercial licence on the model card",
            weights_hint=_hf("owkin/phikon-v2", "model.safetensors (Hugging Face "
                             "transformers layout, converted on load)",
                             "Owkin's non-commercial terms"),
            timm_kwargs=dict(img_size=224, patch_size=16, init_values=1.0)),
        ExtractorSpec(
            "prov_gigapath", "vit_giant_patch14_dinov2", 1536, "token", input_px=224, mpp=0.5,
            precision="fp16", params_m=1134,
            licence="Apache-2.0 with the model card's research-use terms (gated)",
            weights_hint=_hf("prov-gigapath/prov-gigapath", "pytorch_model.bin (the tile "
                             "encoder)", "its research-use terms"),
            timm_kwargs=dict(img_size=224, patch_size=16, embed_dim=1536, depth=40,
                             num_heads=24, init_values=1e-5, mlp_ratio=5.33334)),
    )
}
# CTransPath is not registered: its released weights are for a patched timm 0.5.4 Swin (a
# convolutional stem and the pre-0.9 stage layout); loading them needs a key conversion that
# cannot be checked here without the file. Any other timm model: 'timm:<name>'.


def get_spec(name: str) -> ExtractorSpec:
    """Look up a registered extractor, or ``timm:<model>`` for any timm architecture (pooled
    by timm's own head with ``num_classes=0``, ImageNet normalisation unless timm says else)."""
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
        import torch

        with torch.device("meta"):  # only its width is needed
            model = timm.create_model(arch, pretrained=False, num_classes=0)
        return ExtractorSpec(name, arch, int(model.num_features), "pooled",
                             mean=mean, std=std,  # type: ignore[arg-type]
                             weights_hint=f"a state dict of timm's {arch}")
    raise HistodistillError(f"unknown extractor {name!r}; registered: {sorted(REGISTRY)} "
                            "or 'timm:<model name>'")
