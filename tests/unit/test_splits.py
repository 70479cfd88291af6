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
    with pytest.raises(InputError, match=r"2 events \(or positives\) cannot be split into 5"):
        assign_folds(ev, 5, 0.2, seed=0)


def test_binary_task_stratifies_by_the_endpoint_and_leaves_out_unknowns(tmp_path, caplog):
    from histodistill.splits import make_splits
    from histodistill.training.task import Task

    ids = [f"p{i:02d}" for i in range(24)]
    label = ["1" if i % 3 == 0 else "0" for i in range(24)]
    label[5] = ""  # unknown endpoint
    (tmp_path / "c.tsv").write_text("patient\ttime\tevent\tnode\n" + "".join(
        f"{p}\t{10 + i}\t{i % 2}\t{label[i]}\n" for i, p in enumerate(ids)))
    (tmp_path / "s.tsv").write_text("patient\tslide\tpath\n" + "".join(
        f"{p}\t{p}-s1\tx.svs\n" for p in ids))
    folds = make_splits(tmp_path / "c.tsv", tmp_path / "s.tsv", tmp_path / "f.tsv", 4, 0.25, 0,
                        Task("binary", "node"))
    assert "p05" not in set(folds["patient"]) and "p05" in caplog.text
    test = folds[folds["role"] == "test"]
    positives = test.assign(y=test["patient"].map(dict(zip(ids, label, strict=True))))
    assert positives.groupby("fold")["y"].apply(lambda y: (y == "1").sum()).tolist() == [2] * 4


def test_make_splits_uses_patients_with_slides(tiny_cohort, tmp_path):
    folder, spec, plan = tiny_cohort
    folds = make_splits(folder / "clinical.tsv", folder / "samples.tsv", tmp_path / "f.tsv",
                        n_folds=2, val_fraction=0.25, seed=0)
    assert set(folds["patient"]) == set(plan.patients)
    roles = read_folds(tmp_path / "f.tsv", 1)
    assert set(roles) == {"train", "val", "test"}
