"""Models: shapes, attention, what each one reads; the catalog and registry agree."""

from __future__ import annotations

import pytest
import torch

from histodistill.errors import HistodistillError
from histodistill.models.baselines import Inputs, ModelDims
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


def test_student_distillation_loss_needs_a_teacher():
    student = build_model("student_kd", DIMS)
    out = student(inputs())
    assert student.extra_losses(out, None) == {}
    assert student.extra_losses(out, out)["kd"].item() == pytest.approx(0.0, abs=1e-6)


def test_teachers_are_added_first():
    assert with_teachers(["student_kd", "rna_snn"]) == ["teacher_fusion", "student_kd", "rna_snn"]
    with pytest.raises(HistodistillError, match="unknown model"):
        build_model("mope_v2", DIMS)
