"""What each model needs, without importing torch (read by the workflow at parse time)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from histodistill.errors import InputError


@dataclass(frozen=True)
class ModelInfo:
    needs_wsi: bool  # reads patch features at inference
    needs_rna: bool  # reads pathway scores at inference (patients without RNA are skipped)
    teacher: str | None = None  # model distilled from (same fold)
    privileged: bool = False  # receives the privileged vector while training (not inference)
    pathway_tokens: bool = False  # one token/expert per pathway: needs pathway scores, not genes
    direct: bool = False  # fitted in closed form (no gradient epochs): wsi_meanpool
    # controls: the model this one is a control of, and how (see CONTROLS below)
    base: str | None = None
    control: Literal["permuted", "self"] | None = None

    @property
    def uses_rna(self) -> bool:
        """Reads the privileged vector at all (inference, training or through a teacher)."""
        return self.needs_rna or self.privileged or (
            self.teacher is not None and CATALOG[self.teacher].uses_rna)

    @property
    def histology_only(self) -> bool:
        return self.needs_wsi and not self.needs_rna


CATALOG: dict[str, ModelInfo] = {
    "rna_snn": ModelInfo(needs_wsi=False, needs_rna=True),
    "wsi_abmil": ModelInfo(needs_wsi=True, needs_rna=False),
    "teacher_fusion": ModelInfo(needs_wsi=True, needs_rna=True),
    "student_kd": ModelInfo(needs_wsi=True, needs_rna=False, teacher="teacher_fusion"),
    "ghanet": ModelInfo(needs_wsi=True, needs_rna=False, privileged=True),
    "mope_teacher": ModelInfo(needs_wsi=True, needs_rna=True, pathway_tokens=True),
    "mope": ModelInfo(needs_wsi=True, needs_rna=False, teacher="mope_teacher",
                      pathway_tokens=True),
    "bidistill": ModelInfo(needs_wsi=True, needs_rna=False, privileged=True),
    "wsi_meanpool": ModelInfo(needs_wsi=True, needs_rna=False, direct=True),
}

# Controls that isolate the privileged information, selectable like models:
# ``{model}_permuted`` trains exactly as ``model`` but with the privileged vector shuffled
# across the fold's patients (within each role; the same permutation for a student and its
# teacher's twin), so it keeps the vector's distribution and loses its link to the patient;
# ``student_kd_self`` is student_kd distilled from ``wsi_abmil`` instead of an RNA teacher.
PERMUTABLE = ("teacher_fusion", "student_kd", "ghanet", "mope_teacher", "mope", "bidistill")
CONTROLS: dict[str, ModelInfo] = {
    **{f"{m}_permuted": replace(CATALOG[m], base=m, control="permuted",
                                teacher=f"{CATALOG[m].teacher}_permuted"
                                if CATALOG[m].teacher else None) for m in PERMUTABLE},
    "student_kd_self": replace(CATALOG["student_kd"], base="student_kd", control="self",
                               teacher="wsi_abmil"),
}
CATALOG.update(CONTROLS)


def controls_of(model: str) -> list[str]:
    """The controls of ``model``: its permuted twin and, for student_kd, self-distillation."""
    return [c for c, info in CONTROLS.items() if info.base == model]


def check_privileged(models: list[str], gene_level: bool) -> None:
    """Models that need one token per pathway cannot take a gene-level privileged vector."""
    tokens = [m for m in models if CATALOG[m].pathway_tokens]
    if gene_level and tokens:
        raise InputError(f"{', '.join(tokens)} use one expert per pathway and need pathway "
                         "scores: with privileged.source: genes, leave them out of models (or "
                         "use source: rna)")


def with_teachers(models: list[str]) -> list[str]:
    """``models`` plus every teacher they need, teachers first, no duplicates."""
    out: list[str] = []
    for m in models:
        teacher = CATALOG[m].teacher
        for name in ([teacher] if teacher else []) + [m]:
            if name not in out:
                out.append(name)
    return out
