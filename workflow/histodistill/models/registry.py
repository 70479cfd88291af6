"""Model names used in the config -> classes. One place to add a model."""

from __future__ import annotations

import inspect
from typing import Any

from histodistill.errors import HistodistillError
from histodistill.models.base import ModelDims, RiskModel
from histodistill.models.baselines import RnaSNN, StudentKD, TeacherFusion, WsiABMIL
from histodistill.models.bidistill import BiDistill
from histodistill.models.catalog import CONTROLS
from histodistill.models.ghanet import GHANet
from histodistill.models.meanpool import WsiMeanPool
from histodistill.models.mope import MoPE, MoPETeacher

MODELS: dict[str, type[RiskModel]] = {
    "rna_snn": RnaSNN,
    "wsi_abmil": WsiABMIL,
    "teacher_fusion": TeacherFusion,
    "student_kd": StudentKD,
    "ghanet": GHANet,
    "mope_teacher": MoPETeacher,
    "mope": MoPE,
    "bidistill": BiDistill,
    "wsi_meanpool": WsiMeanPool,
}
# a control is its base model's class with the control's catalog entry (the training step
# reads what differs - the permuted privileged vector, the teacher - from ``info``)
MODELS.update({name: type("".join(w.title() for w in name.split("_")), (MODELS[info.base],),
                          {"info": info, "__doc__": f"Control of {info.base} ({info.control})."})
               for name, info in CONTROLS.items() if info.base is not None})


def model_class(name: str) -> type[RiskModel]:
    try:
        return MODELS[name]
    except KeyError:
        raise HistodistillError(f"unknown model {name!r}; available: {sorted(MODELS)}") from None


def build_model(name: str, dims: ModelDims, **options: Any) -> RiskModel:
    """``options``: training parameters and the model's saved structure; each model takes the
    keyword arguments its constructor names and ignores the rest."""
    cls = model_class(name)
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "dims"}
    return cls(dims, **{k: v for k, v in options.items() if k in accepted})
