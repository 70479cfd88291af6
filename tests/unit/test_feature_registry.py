"""Every registered foundation model: built for real, weights saved and reloaded through the
loading path a user's file takes, right width and dtype; the Phikon-v2 (transformers DINOv2)
conversion is checked against transformers itself."""

from __future__ import annotations

import gc

import pytest
import torch

from histodistill.errors import WeightsError
from histodistill.features.encoders import build_backbone, dino_pos_embed
from histodistill.features.factory import build_extractor
from histodistill.features.registry import REGISTRY, ExtractorSpec, get_spec
from histodistill.features.weights import hf_dinov2_to_timm
from histodistill.provenance import file_sha256


def _architecture(spec: ExtractorSpec) -> tuple:
    return spec.builder, spec.arch, spec.layout, repr(sorted(spec.timm_kwargs.items()))


# one test per distinct architecture (H-optimus-0 and -1 share theirs)
ARCHITECTURES = {_architecture(s): n for n, s in sorted(REGISTRY.items(), reverse=True)}


def random_state(spec: ExtractorSpec | torch.nn.Module, seed: int = 0,
                 dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """Random weights with the key names and shapes of ``spec``'s backbone (or of a module
    built on the meta device); no initialisation runs, which for a 1.1B ViT takes ~30 s."""
    if isinstance(spec, ExtractorSpec):
        with torch.device("meta"):
            spec = build_backbone(spec)
    gen = torch.Generator().manual_seed(seed)
    pool = torch.randn(1 << 20, generator=gen) * 0.02  # tiled: drawing 1e9 normals is slow
    state = {}
    for key, meta in spec.state_dict().items():
        if not meta.is_floating_point():
            state[key] = torch.zeros(meta.shape, dtype=meta.dtype)
        elif "norm" in key or "bn" in key or key.endswith(("running_var", "gamma")):
            state[key] = torch.ones(meta.shape, dtype=dtype)
        else:
            start = int(torch.randint(0, 1 << 19, (1,), generator=gen))
            flat = pool[start:start + (1 << 19)].repeat(meta.numel() // (1 << 19) + 1)
            state[key] = flat[:meta.numel()].reshape(meta.shape).to(dtype)
    return state


def save(state: dict[str, torch.Tensor], path) -> None:
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, path)


def test_registry_entries_say_what_a_user_needs():
    for name, spec in REGISTRY.items():
        assert spec.name == name and spec.dim > 0 and spec.params_m > 0
        assert spec.mpp is not None and spec.magnification.endswith("x")
        assert spec.licence and "resources/" in spec.weights_hint or "safetensors" in \
            spec.weights_hint, name
        assert spec.precision in ("fp32", "bf16", "fp16")
        if spec.pooling != "stage_avg":
            assert spec.input_px in (224, 448), name
    assert REGISTRY["resnet50_trunc"].dim == 1024 and REGISTRY["uni"].magnification == "20x"


@pytest.mark.parametrize("name", sorted(ARCHITECTURES.values()))
def test_every_registered_architecture_round_trips_its_weights(name, tmp_path):
    spec = REGISTRY[name]
    # the large models' files in half precision (as several are published): 2x less I/O,
    # and the loader's cast to float32 is exercised
    dtype = torch.float16 if spec.params_m > 500 else torch.float32
    if spec.layout == "hf_dinov2":  # the layout of the hub file: transformers' DINOv2
        transformers = pytest.importorskip("transformers")
        config = transformers.Dinov2Config(hidden_size=1024, num_hidden_layers=24,
                                           num_attention_heads=16, patch_size=16,
                                           image_size=224, layerscale_value=1e-5)
        with torch.device("meta"):
            hf_model = transformers.Dinov2Model(config)
        state = random_state(hf_model)
    else:
        state = random_state(spec, dtype=dtype)
    path = tmp_path / ("model.safetensors" if "safetensors" in spec.weights_hint
                       else "pytorch_model.bin")
    save({k: v.contiguous() for k, v in state.items()}, path)
    probe_key = next(k for k in state if "blocks.3." in k or "encoder.layer.3." in k
                     or "layer2." in k)
    probe = state[probe_key].clone()
    del state
    gc.collect()

    ext = build_extractor(name, path)
    assert not ext.random_weights and ext.weights_sha256 == file_sha256(path)
    loaded = dict(ext.encoder.backbone.named_parameters())
    mapped = probe_key if probe_key in loaded else \
        next(iter(hf_dinov2_to_timm({probe_key: probe})))
    if mapped in loaded:  # q/k/v are fused on load: covered by the transformers test
        assert loaded[mapped].dtype == torch.float32 and torch.equal(loaded[mapped],
                                                                     probe.float())
    px, n = (spec.input_px, 1) if spec.input_px else (64, 2)  # small inputs: CI has 2 cores
    tiles = torch.randint(0, 256, (n, 3, px, px), dtype=torch.uint8)
    with torch.inference_mode():
        out = ext.encoder(tiles)
    assert out.shape == (n, spec.dim) and out.dtype == torch.float32
    assert torch.isfinite(out).all() and out.abs().sum() > 0
    del ext, loaded
    gc.collect()


def _tiny_dinov2():
    transformers = pytest.importorskip("transformers")
    config = transformers.Dinov2Config(hidden_size=64, num_hidden_layers=2,
                                       num_attention_heads=4, patch_size=16, image_size=64,
                                       layerscale_value=0.5)
    torch.manual_seed(1)
    model = transformers.Dinov2Model(config).eval()
    with torch.no_grad():  # layer scales and norms away from their trivial initial values
        for name, p in model.named_parameters():
            if "lambda1" in name or "norm" in name:
                p.add_(torch.rand_like(p))
    spec = ExtractorSpec("tiny_dinov2", "vit_large_patch16_224", 64, "token", input_px=64,
                         layout="hf_dinov2",
                         timm_kwargs=dict(img_size=64, patch_size=16, embed_dim=64, depth=2,
                                          num_heads=4, init_values=1.0))
    return model, spec


# the names in checkpoints published before transformers 5 (Phikon-v2's model.safetensors)
_OLD_NAMES = {"attention.q_proj": "attention.attention.query",
              "attention.k_proj": "attention.attention.key",
              "attention.v_proj": "attention.attention.value",
              "attention.o_proj": "attention.output.dense"}


@pytest.mark.parametrize("names", ["transformers5", "published"])
def test_hf_dinov2_weights_give_transformers_own_output(names, tmp_path, monkeypatch):
    model, spec = _tiny_dinov2()
    state = model.state_dict()
    if names == "published":
        for new, old in _OLD_NAMES.items():
            state = {k.replace(new, old): v for k, v in state.items()}
        assert any("attention.attention.query" in k for k in state)
    save(state, tmp_path / "model.safetensors")
    monkeypatch.setitem(REGISTRY, spec.name, spec)
    ext = build_extractor(spec.name, tmp_path / "model.safetensors")
    tiles = torch.randint(0, 256, (3, 3, 64, 64), dtype=torch.uint8)
    with torch.inference_mode():
        ours = ext.encoder(tiles)
        x = (tiles.float() - ext.encoder.mean) / ext.encoder.std
        theirs = model(pixel_values=x).last_hidden_state[:, 0]
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


def test_a_wrapped_or_prefixed_checkpoint_loads_and_a_foreign_one_is_refused(tmp_path):
    spec = get_spec("resnet18_trunc")
    state = random_state(spec, seed=3)
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}},
               tmp_path / "wrapped.pt")
    ext = build_extractor("resnet18_trunc", tmp_path / "wrapped.pt")
    assert torch.equal(ext.encoder.backbone.state_dict()["conv1.weight"], state["conv1.weight"])
    save(random_state(get_spec("uni")), tmp_path / "uni.safetensors")
    with pytest.raises(WeightsError, match="does not match extractor 'virchow2'.*paige-ai"):
        build_extractor("virchow2", tmp_path / "uni.safetensors")


def test_conch_position_grid_is_resized_dino_style():
    pos = torch.randn(1, 1 + 14 * 14, 8)
    assert dino_pos_embed(pos, 14) is pos
    big = dino_pos_embed(pos, 28)
    assert big.shape == (1, 1 + 28 * 28, 8) and torch.equal(big[:, 0], pos[:, 0])
