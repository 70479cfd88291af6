"""Models: shapes, attention, what each one reads; the catalog and registry agree."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from histodistill.errors import HistodistillError
from histodistill.models.base import Inputs, ModelDims
from histodistill.models.catalog import CATALOG, with_teachers
from histodistill.models.registry import MODELS, build_model

DIMS = ModelDims(feature_dim=32, n_pathways=6, n_out=4, hidden=16)


def inputs(n=50, with_rna=True):
    torch.manual_seed(0)
    return Inputs(torch.randn(n, 32), torch.randn(6) if with_rna else None)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_forward_shapes(name):
    model = build_model(name, DIMS).eval()
    out = model(inputs())
    assert out.logits.shape == (4,)
    if CATALOG[name].needs_wsi:
        assert out.attention is not None and out.attention.shape == (50,)
        assert out.attention.sum().item() == pytest.approx(1.0, abs=1e-5)


def test_catalog_and_registry_cover_the_same_models():
    assert set(CATALOG) == set(MODELS)
    for name, cls in MODELS.items():
        assert cls.info is CATALOG[name]


@pytest.mark.parametrize("name", [n for n, i in CATALOG.items() if i.histology_only])
def test_histology_only_models_ignore_rna(name):
    model = build_model(name, DIMS).eval()
    with_rna, without = inputs(with_rna=True), inputs(with_rna=False)
    assert torch.equal(model(with_rna).logits, model(without).logits)


def no_task_loss(logits):
    return logits.sum() * 0.0


def test_student_distillation_loss_needs_a_teacher():
    student = build_model("student_kd", DIMS)
    out = student(inputs())
    assert student.extra_losses(out, None, no_task_loss) == {}
    assert student.extra_losses(out, out, no_task_loss)["kd"].item() == pytest.approx(0.0,
                                                                                     abs=1e-6)


def test_teachers_are_added_first():
    assert with_teachers(["student_kd", "rna_snn"]) == ["teacher_fusion", "student_kd", "rna_snn"]
    assert with_teachers(["mope"]) == ["mope_teacher", "mope"]
    with pytest.raises(HistodistillError, match="unknown model"):
        build_model("mope_v2", DIMS)


@pytest.mark.parametrize("name", [n for n, i in CATALOG.items() if i.privileged])
def test_privileged_models_learn_from_rna_only_in_training(name):
    """G-HANet and bidistill get RNA-dependent losses in training mode; patients without RNA
    get none (task loss only); and every loss back-propagates into the WSI path."""
    torch.manual_seed(1)
    model = build_model(name, DIMS, missing_rate=0.0).train()
    out = model(inputs(with_rna=True))
    losses = model.extra_losses(out, None, lambda logits: logits.pow(2).sum())
    assert losses and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    wsi_grads = [p.grad for n, p in model.named_parameters()
                 if n.startswith(("patches", "single", "cab")) and p.grad is not None]
    assert wsi_grads and any(g.abs().sum() > 0 for g in wsi_grads)
    no_rna = model(inputs(with_rna=False))
    kept = model.extra_losses(no_rna, None, lambda logits: logits.pow(2).sum())
    assert not {"recon", "kd", "single_from_multi"} & set(kept)


def test_ghanet_reconstruction_loss_is_mse_plus_cosine():
    from histodistill.models.layers import cosine_mse

    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert cosine_mse(a, a).item() == pytest.approx(0.0, abs=1e-6)
    b = torch.tensor([[0.0, 1.0], [0.0, 2.0]])  # row 0 orthogonal: mse 1, cos error 1
    assert cosine_mse(a, b).item() == pytest.approx((1.0 + 1.0 + 0.0) / 2)
    assert cosine_mse(a, b, gamma=2.0).item() == pytest.approx(1.0)


def test_ghanet_groups_follow_correlation_on_training_data():
    import numpy as np

    from histodistill.models.ghanet import privileged_groups

    rng = np.random.default_rng(0)
    z = rng.normal(size=(60, 2))
    x = np.column_stack([z[:, 0], z[:, 0] + 0.1 * rng.normal(size=60), z[:, 1],
                         -z[:, 1] + 0.1 * rng.normal(size=60)])
    assert privileged_groups(x, 2) == [[0, 1], [2, 3]]
    model = build_model("ghanet", ModelDims(32, 4, 4, 16), groups=[[0, 1], [2, 3]])
    assert model.structure() == {"groups": [[0, 1], [2, 3]]}


def test_mope_alignment_is_zero_against_itself_and_weights_reconstructible_pathways():
    torch.manual_seed(0)
    teacher = build_model("mope_teacher", DIMS).eval()
    t_out = teacher(inputs())
    assert t_out.extras["usage"].shape == (6,)
    assert t_out.extras["usage"].sum().item() == pytest.approx(1.0, abs=1e-5)
    assert t_out.extras["expert_attention"].shape == (6, 50)
    student = build_model("mope", DIMS, reconstructibility=[1, 0, 0, 0, 0, 0]).eval()
    s_out = student(inputs())
    self_loss = student.extra_losses(s_out, s_out, no_task_loss)
    assert all(v.item() == pytest.approx(0.0, abs=1e-6) for v in self_loss.values())
    losses = student.extra_losses(s_out, t_out, no_task_loss)
    assert losses["usage_kl"].item() > 0
    # only pathway 0 is reconstructible: the expert term is its gap alone (weights mean 1)
    gap0 = ((s_out.extras["experts"][0] - t_out.extras["experts"][0]) ** 2).mean()
    assert losses["expert_align"].item() == pytest.approx(gap0.item(), rel=1e-5)


def test_mope_reconstructible_usage_target_keeps_only_what_histology_can_see():
    torch.manual_seed(0)
    t_out = build_model("mope_teacher", DIMS).eval()(inputs())
    u_t = t_out.extras["usage"]
    student = build_model("mope", DIMS, reconstructibility=[3, 1, 0, 0, 0, 0],
                          usage_target="reconstructible").eval()
    target = student.usage_target_of(u_t)
    expected = torch.zeros(6)
    expected[:2] = torch.stack([3 * u_t[0], u_t[1]]) / (3 * u_t[0] + u_t[1])
    assert torch.allclose(target, expected, atol=1e-6)
    s_out = student(inputs())
    u_s = s_out.extras["usage"]
    kl = (expected[:2] * (expected[:2].log() - u_s[:2].log())).sum()
    losses = student.extra_losses(s_out, t_out, no_task_loss)
    assert losses["usage_kl"].item() == pytest.approx(kl.item(), rel=1e-5)
    # the specified target is the teacher's usage itself, and so is the fallback when no
    # pathway is reconstructible
    spec = build_model("mope", DIMS, reconstructibility=[3, 1, 0, 0, 0, 0])
    assert torch.equal(spec.usage_target_of(u_t), u_t)
    blind = build_model("mope", DIMS, reconstructibility=[0] * 6, usage_target="reconstructible")
    assert torch.equal(blind.usage_target_of(u_t), u_t)
    with pytest.raises(ValueError, match="usage_target"):
        build_model("mope", DIMS, usage_target="student")


def test_reconstructibility_finds_the_pathway_the_features_carry():
    import numpy as np

    from histodistill.models.mope import reconstructibility

    rng = np.random.default_rng(0)
    feats = rng.normal(size=(80, 10))
    scores = np.column_stack([feats[:, 0] * 2 + 0.1 * rng.normal(size=80),
                              rng.normal(size=80)])
    r2 = reconstructibility(feats, scores)
    assert r2[0] > 0.9 and r2[1] < 0.1


def test_bidistill_drops_the_privileged_vector_at_the_missing_rate():
    x = inputs()  # (seeds torch itself)
    model = build_model("bidistill", DIMS, missing_rate=0.7).train()
    present = [bool(model(x).extras["present"]) for _ in range(400)]
    assert 0.22 < np.mean(present) < 0.38
    assert "multi" not in model.eval()(inputs()).extras


def test_build_model_passes_only_the_options_a_model_takes():
    model = build_model("bidistill", DIMS, missing_rate=0.2, n_groups=3, lr=1.0)
    assert model.missing_rate == 0.2
