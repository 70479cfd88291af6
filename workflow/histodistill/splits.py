"""Patient-level, seeded, stratified k-fold splits with an inner validation split.

Survival tasks stratify by the event indicator, binary tasks by the endpoint; patients whose
binary endpoint is unknown are left out of every fold (logged with their IDs).

``splits/folds.tsv`` is long: one row per (fold, patient) with ``role`` in
{train, val, test}. For fold k, ``test`` is the k-th outer fold (out-of-fold predictions are
reported on it); ``val`` is a stratified part of the remaining patients used only for early
stopping / model selection; ``train`` is the rest, on which everything is fitted.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from histodistill.errors import InputError
from histodistill.io import write_tsv
from histodistill.sheets import patient_slides, read_clinical, read_samples
from histodistill.training.task import Task

log = logging.getLogger(__name__)


def assign_folds(patients: pd.Series, n_folds: int, val_fraction: float, seed: int
                 ) -> pd.DataFrame:
    """``patients``: 0/1 stratum (event or binary label) indexed by patient ID -> long
    (fold, patient, role)."""
    from sklearn.model_selection import StratifiedKFold, train_test_split  # slow to import

    patients = patients.sort_index().astype(int)  # independent of sheet order
    n_events = int(patients.sum())
    if min(n_events, len(patients) - n_events) < n_folds:
        raise InputError(f"{len(patients)} patients with {n_events} events (or positives) cannot "
                         f"be split into {n_folds} stratified folds; lower splits.n_folds")
    outer = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    ids = patients.index.to_numpy()
    y = patients.to_numpy()
    rows = []
    for k, (train_idx, test_idx) in enumerate(outer.split(ids, y)):
        rest, rest_y = ids[train_idx], y[train_idx]
        n_val = max(2, int(round(val_fraction * len(rest))))
        stratify = rest_y if min(np.bincount(rest_y, minlength=2)) >= 2 else None
        train, val = train_test_split(rest, test_size=n_val, stratify=stratify,
                                      random_state=seed + 1000 * (k + 1))
        rows += [(k, p, "train") for p in train] + [(k, p, "val") for p in val]
        rows += [(k, p, "test") for p in ids[test_idx]]
    out = pd.DataFrame(rows, columns=["fold", "patient", "role"])
    return out.sort_values(["fold", "role", "patient"]).reset_index(drop=True)


def make_splits(clinical_path: str | Path, samples_path: str | Path, out_tsv: str | Path,
                n_folds: int, val_fraction: float, seed: int, task: Task | None = None
                ) -> pd.DataFrame:
    """Split the patients that have at least one slide (every model needs histology) and,
    for a binary task, a known endpoint."""
    task = task or Task()
    clinical = read_clinical(clinical_path)
    slides = read_samples(samples_path, clinical.index.tolist(), check_files=False)
    with_slides = sorted(patient_slides(slides))
    no_slide = sorted(set(clinical.index) - set(with_slides))
    if no_slide:
        log.warning("%d patients have no slide and are not in any fold: %s", len(no_slide),
                    ", ".join(no_slide[:10]))
    strata = task.labels(clinical, clinical_path).loc[with_slides]
    unknown = strata.index[strata.isna()].tolist()
    if unknown:
        log.warning("%d patients have no %s value and are not in any fold: %s", len(unknown),
                    task.name, ", ".join(unknown[:10]))
    folds = assign_folds(strata.dropna(), n_folds, val_fraction, seed)
    write_tsv(out_tsv, folds)
    log.info("%d patients in %d folds (seed %d)", len(with_slides), n_folds, seed)
    return folds


def read_fold_table(path: str | Path) -> pd.DataFrame:
    """The long (fold, patient, role) table, patient IDs as strings."""
    return pd.read_csv(path, sep="\t", dtype={"patient": str})


def read_folds(path: str | Path, fold: int) -> dict[str, list[str]]:
    """Role -> patients of ``fold``."""
    df = read_fold_table(path)
    sub = df[df["fold"] == fold]
    if sub.empty:
        raise InputError(f"{path} has no fold {fold}")
    return {role: sorted(sub.loc[sub["role"] == role, "patient"])
            for role in ("train", "val", "test")}
