"""The privileged vector a model may learn from: RNA pathway scores, gene-level expression,
clinical covariates or pathways and covariates (config ``privileged:``). Histology-only models
receive it only while training.

``source: rna`` (default) uses the pathway scores; ``genes`` the normalised expression of the
gene-set collection's genes, fitted per fold (rna/genes.py; G-HANet then groups it by gene
set, e.g. MCAT's six families); ``clinical`` uses the numeric
``covariates`` of the clinical sheet (e.g. age, tumour size, grade, receptor status coded as
numbers); ``both`` concatenates them. A patient lacks the vector when any part is missing (no
RNA, or an empty covariate); such patients are counted and logged by the training step, never
dropped silently. Scaling of every column is fitted on the fold's training patients.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from histodistill.errors import InputError
from histodistill.params import from_config


@dataclass(frozen=True)
class Privileged:
    source: Literal["rna", "genes", "clinical", "both"] = "rna"
    covariates: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.source not in ("rna", "genes", "clinical", "both"):
            raise InputError(f"privileged.source must be rna, genes, clinical or both, got "
                             f"{self.source!r}")
        if self.source in ("clinical", "both") and not self.covariates:
            raise InputError(f"privileged.source {self.source} needs privileged.covariates: "
                             "numeric columns of the clinical sheet")

    @classmethod
    def from_config(cls, cfg: dict[str, Any] | None) -> Privileged:
        return from_config(cls, cfg or {}, "privileged")

    def table(self, pathways: pd.DataFrame, clinical: pd.DataFrame, clinical_path: object
              ) -> pd.DataFrame:
        """Patients (rows) with a complete privileged vector x its columns; ``pathways`` is
        the fold's RNA table (pathway scores, or gene values for ``genes``)."""
        if self.source in ("rna", "genes"):
            return pathways
        cov = self.covariate_table(clinical, clinical_path)
        return cov if self.source == "clinical" else pathways.join(cov, how="inner")

    @property
    def gene_level(self) -> bool:
        return self.source == "genes"

    def covariate_table(self, clinical: pd.DataFrame, clinical_path: object) -> pd.DataFrame:
        """The numeric ``covariates`` (prefixed ``clinical:``) of patients who have them all;
        a missing column or a non-numeric cell is an error naming the sheet."""
        missing = [c for c in self.covariates if c not in clinical.columns]
        if missing:
            raise InputError(f"{clinical_path}: privileged.covariates {missing} are not "
                             f"columns (have {sorted(clinical.columns)})")
        cov = clinical[self.covariates].apply(pd.to_numeric, errors="coerce")
        bad = clinical[self.covariates].notna() & cov.isna()
        if bad.any().any():
            col = bad.any().idxmax()
            p = bad[col].idxmax()
            raise InputError(f"{clinical_path}: patient {p}: covariate {col} = "
                             f"{clinical.at[p, col]!r} is not a number; code categories "
                             "as numbers (e.g. grade 1/2/3, ER status 0/1)")
        return cov.add_prefix("clinical:").dropna()
