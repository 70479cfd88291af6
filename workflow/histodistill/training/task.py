"""The prediction task: survival (discrete-time NLL) or a binary endpoint (BCE).

Config (``task:``): ``type: survival`` (the default) or ``type: binary`` with ``endpoint``, a
0/1 column of the clinical sheet (e.g. lymph-node metastasis). One task per run: the models'
outputs, the splits' stratification and the metrics follow it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from histodistill.errors import InputError
from histodistill.params import from_config

if TYPE_CHECKING:  # torch is imported lazily: the workflow reads this module at parse time
    import torch


@dataclass(frozen=True)
class Task:
    type: Literal["survival", "binary"] = "survival"
    endpoint: str | None = None

    def __post_init__(self) -> None:
        if self.type not in ("survival", "binary"):
            raise InputError(f"task.type must be 'survival' or 'binary', got {self.type!r}")
        if self.type == "binary" and not self.endpoint:
            raise InputError("task.type binary needs task.endpoint: a 0/1 column of the "
                             "clinical sheet")

    @classmethod
    def from_config(cls, cfg: dict[str, Any] | None) -> Task:
        return from_config(cls, cfg or {}, "task")

    @property
    def name(self) -> str:
        return "survival" if self.type == "survival" else str(self.endpoint)

    def labels(self, clinical: pd.DataFrame, path: object = "the clinical sheet") -> pd.Series:
        """Binary labels by patient; NaN where the endpoint is missing. Survival: events."""
        if self.type == "survival":
            return clinical["event"].astype(float)
        col = str(self.endpoint)
        if col not in clinical.columns:
            raise InputError(f"{path}: task.endpoint {col!r} is not a column (have "
                             f"{sorted(clinical.columns)})")
        values = pd.to_numeric(clinical[col], errors="coerce")
        bad = clinical[col].notna() & ~values.isin([0, 1])
        if bad.any():
            p = bad.idxmax()
            raise InputError(f"{path}: patient {p}: {col} must be 0 or 1 (or empty when "
                             f"unknown), got {clinical.at[p, col]!r}")
        return values.astype(float)

    def n_out(self, cuts: np.ndarray) -> int:
        return len(cuts) + 1 if self.type == "survival" else 1

    def loss(self, logits: torch.Tensor, interval: int, event: int, label: float | None,
             alpha: float) -> torch.Tensor:
        """One patient's loss of ``logits`` (n_out,)."""
        import torch
        import torch.nn.functional as F

        from histodistill.models.survival import nll_loss

        if self.type == "survival":
            return nll_loss(logits.unsqueeze(0), torch.tensor([interval], device=logits.device),
                            torch.tensor([event], device=logits.device), alpha)
        assert label is not None
        return F.binary_cross_entropy_with_logits(
            logits.reshape(1), torch.tensor([float(label)], device=logits.device))

    def prediction(self, logits: torch.Tensor) -> dict[str, float]:
        """``risk`` (higher = worse / more likely positive) and the task's curve or logit."""
        import torch

        from histodistill.models.survival import risk_score, survival_curve

        logits = logits.detach().cpu()
        if self.type == "survival":
            surv = survival_curve(logits).numpy()
            return {"risk": float(risk_score(logits)),
                    **{f"surv_{j}": float(s) for j, s in enumerate(surv)}}
        return {"risk": float(torch.sigmoid(logits).reshape(())),
                "logit": float(logits.reshape(()))}
