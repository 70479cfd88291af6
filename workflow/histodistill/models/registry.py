"""Model names used in the config -> classes. One place to add a model."""

from __future__ import annotations

from typing import Any

from histodistill.errors import HistodistillError
from histodistill.models.baselines import (
    ModelDims,
    RiskModel,
    RnaSNN,
    StudentKD,
    TeacherFusion,
    WsiABMIL,
)

MODELS: dict[str, type[RiskModel]] = {
    "rna_snn": RnaSNN,
    "wsi_abmil": WsiABMIL,
    "teacher_fusion": TeacherFusion,
    "student_kd": StudentKD,
}


def model_class(name: str) -> type[RiskModel]:
    try:
        return MODELS[name]
    except KeyError:
        raise HistodistillError(f"unknown model {name!r}; available: {sorted(MODELS)}") from None


def build_model(name: str, dims: ModelDims, **options: Any) -> RiskModel:
    cls = model_class(name)
    if cls is StudentKD:
        return StudentKD(dims, kd_temperature=float(options.get("kd_temperature", 2.0)))
    return cls(dims)


