"""Splits: patient-level, stratified, seeded, with a disjoint inner validation set."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from histodistill.errors import InputError
from histodistill.splits import assign_folds, make_splits, read_folds


def events(n=60, rate=0.4, seed=0):
    rng = np.random.default_rng(seed)
    return pd.Series((rng.random(n) < rate).astype(int), index=[f"P{i:03d}" for i in range(n)])


def test_every_patient_is_tested_exactly_once_and_roles_are_disjoint():
    ev = events()
    folds = assign_folds(ev, 5, 0.2, seed=1)
    test = folds[folds["role"] == "test"]
    assert sorted(test["patient"]) == sorted(ev.index)
    for _, fold in folds.groupby("fold"):
        assert len(fold) == len(ev) and not fold["patient"].duplicated().any()
        roles = {r: set(g["patient"]) for r, g in fold.groupby("role")}
        assert len(roles["val"]) == round(0.2 * (len(ev) - len(roles["test"])))


def test_folds_are_event_stratified():
    ev = events(100, 0.3)
    folds = assign_folds(ev, 5, 0.2, seed=0)
    per_fold = folds[folds["role"] == "test"].groupby("fold")["patient"].apply(
        lambda p: ev.loc[p].sum())
    assert per_fold.max() - per_fold.min() <= 1


def test_same_seed_same_split_regardless_of_sheet_order():
    ev = events()
    a = assign_folds(ev, 5, 0.2, seed=3)
    b = assign_folds(ev.sample(frac=1, random_state=9), 5, 0.2, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(assign_folds(ev, 5, 0.2, seed=4))


def test_too_few_events_is_a_clear_error():
    ev = pd.Series([1, 1, 0, 0, 0, 0, 0, 0], index=list("ABCDEFGH"))
    with pytest.raises(InputError, match="2 events cannot be split into 5"):
        assign_folds(ev, 5, 0.2, seed=0)


def test_make_splits_uses_patients_with_slides(tiny_cohort, tmp_path):
    folder, spec, plan = tiny_cohort
    folds = make_splits(folder / "clinical.tsv", folder / "samples.tsv", tmp_path / "f.tsv",
                        n_folds=2, val_fraction=0.25, seed=0)
    assert set(folds["patient"]) == set(plan.patients)
    roles = read_folds(tmp_path / "f.tsv", 1)
    assert set(roles) == {"train", "val", "test"}
