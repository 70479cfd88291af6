"""What the demo cohort contains, and the cheap plan of its patients and slides.

The plan (patient and slide IDs) is a pure function of the spec, so the workflow can build its
DAG at parse time, before the generator has written a single file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from histodistill.params import from_config

Morphology = Literal["nuclear_density", "fibrosis", "pallor"]


@dataclass(frozen=True)
class Programme:
    """A latent pathway programme: it shifts its gene set's expression and, optionally, the
    tissue's appearance, the hazard and the binary endpoint."""

    name: str
    pathway: str  # gene-set name in the GMT whose genes the programme up-regulates
    morphology: Morphology | None  # None: invisible in histology
    log_hazard: float  # log hazard ratio per standard deviation of the programme
    binary_logit: float = 0.0  # effect on the binary endpoint's logit per SD


DEFAULT_PROGRAMMES: tuple[Programme, ...] = (
    Programme("proliferation", "HALLMARK_E2F_TARGETS", "nuclear_density", 0.7, 1.2),
    Programme("stroma", "HALLMARK_EPITHELIAL_MESENCHYMAL_TRANSITION", "fibrosis", 0.5, 0.0),
    Programme("hypoxia", "HALLMARK_HYPOXIA", "pallor", 0.0, 0.0),
    Programme("immune", "HALLMARK_INTERFERON_GAMMA_RESPONSE", None, -0.6, 1.0),
    Programme("metabolic", "HALLMARK_OXIDATIVE_PHOSPHORYLATION", None, 0.5, 0.0),
)


@dataclass(frozen=True)
class DemoSpec:
    n_patients: int = 40
    seed: int = 0
    second_slide_fraction: float = 0.3
    rna_missing_fraction: float = 0.0
    slide_width_um: float = 1536.0
    slide_height_um: float = 1152.0
    mpp: float = 0.5
    n_genes: int = 2500
    median_survival_months: float = 36.0
    max_follow_up_months: float = 120.0
    programmes: tuple[Programme, ...] = field(default=DEFAULT_PROGRAMMES)

    def __post_init__(self) -> None:
        if self.n_patients < 4:
            raise ValueError(f"demo: n_patients must be >= 4, got {self.n_patients}")
        for name in ("second_slide_fraction", "rna_missing_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"demo: {name} must be in [0, 1), got {value}")
        if not 0.1 <= self.mpp <= 10:
            raise ValueError(f"demo: mpp must be in [0.1, 10], got {self.mpp}")

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> DemoSpec:
        """Build from the ``demo:`` block of a cohort in the workflow config."""
        return from_config(cls, cfg, "demo", internal=frozenset({"programmes"}))


@dataclass(frozen=True)
class DemoPlan:
    patients: tuple[str, ...]
    slides: dict[str, str]  # slide id -> patient id (insertion order = generation order)
    rna_missing: frozenset[str]

    def slides_of(self, patient: str) -> list[str]:
        return [s for s, p in self.slides.items() if p == patient]


def plan_demo(spec: DemoSpec) -> DemoPlan:
    """Patient and slide IDs of the demo cohort (deterministic from the seed, no I/O)."""
    rng = np.random.default_rng([spec.seed, 0])
    width = len(str(spec.n_patients))
    patients = tuple(f"demo-p{i + 1:0{width}d}" for i in range(spec.n_patients))
    n_slides = 1 + (rng.random(spec.n_patients) < spec.second_slide_fraction)
    slides = {f"{p}-s{j + 1}": p for p, n in zip(patients, n_slides, strict=True)
              for j in range(int(n))}
    n_missing = int(round(spec.rna_missing_fraction * spec.n_patients))
    missing = rng.choice(spec.n_patients, size=n_missing, replace=False)
    return DemoPlan(patients, slides, frozenset(patients[i] for i in missing))
