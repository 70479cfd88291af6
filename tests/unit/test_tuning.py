"""Model selection inside the fold and the controls that isolate the privileged information:
seeded distinct candidates with the same budget for every model, a permuted twin that keeps
the privileged vector's distribution and loses its link to the patient, self-distillation
without RNA, and what meta.json records."""

from __future__ import annotations

import json
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest

from histodistill.errors import InputError
from histodistill.models.catalog import CATALOG, controls_of, with_teachers
from histodistill.training.candidate import permute_privileged
from histodistill.training.data import PatientRecord
from histodistill.training.fold import train_fold
from histodistill.training.loop import TrainParams
from histodistill.training.tuning import NOT_TUNABLE, TuneParams, candidates, tunable_names

SPACE = {"common": {"lr": [1e-4, 1e-3, 1e-2], "dropout": [0.1, 0.25]},
         "student_kd": {"kd_weight": [0.5, 2.0]}, "wsi_meanpool": {"penalty": [1.0, 100.0]}}
DEFAULTS = asdict(TrainParams())


def test_budget_one_is_the_configured_values_only():
    assert candidates(TuneParams(space=SPACE), "student_kd", 0, True, DEFAULTS) == [{}]
    assert candidates(TuneParams(budget=5), "student_kd", 0, True, DEFAULTS) == [{}]


def test_candidates_are_seeded_distinct_and_never_the_defaults_again():
    tune = TuneParams(budget=6, seed=3, space=SPACE)
    got = candidates(tune, "student_kd", 2, True, DEFAULTS)
    assert got == candidates(tune, "student_kd", 2, True, DEFAULTS)  # deterministic
    assert got[0] == {} and len(got) == 6
    assert all(set(c) == {"dropout", "kd_weight", "lr"} for c in got[1:])  # common + own
    assert len({tuple(sorted(c.items())) for c in got[1:]}) == 5
    assert got != candidates(tune, "student_kd", 3, True, DEFAULTS)  # another fold
    assert got != candidates(TuneParams(6, 4, SPACE), "student_kd", 2, True, DEFAULTS)


def test_a_small_grid_gives_fewer_candidates_and_direct_models_skip_common():
    tune = TuneParams(budget=10, space=SPACE)
    meanpool = candidates(tune, "wsi_meanpool", 0, False, DEFAULTS)
    assert meanpool == [{}, {"penalty": 1.0}, {"penalty": 100.0}] or \
        meanpool == [{}, {"penalty": 100.0}, {"penalty": 1.0}]
    # a family without its own entries searches the common grid (3 x 2 = 6 points; the
    # configured dropout 0.25 with an lr off the grid is still a new point)
    assert len(candidates(tune, "ghanet", 0, True, DEFAULTS)) == 7


def test_search_space_errors_name_the_key():
    tunable = tunable_names(TrainParams)
    assert "seed" not in tunable and not NOT_TUNABLE & tunable and "penalty" in tunable
    with pytest.raises(InputError, match=r"tune.space.common.seed: not a tunable"):
        TuneParams(space={"common": {"seed": [1, 2]}}).check(tunable)
    with pytest.raises(InputError, match=r"tune.space.mope.usage_weight: give a non-empty"):
        TuneParams(space={"mope": {"usage_weight": []}}).check(tunable)
    with pytest.raises(InputError, match="tune.budget must be >= 1"):
        TuneParams(budget=0)


def test_controls_are_models_with_the_right_teachers_and_rna_use():
    assert CATALOG["student_kd_permuted"].teacher == "teacher_fusion_permuted"
    assert CATALOG["mope_permuted"].teacher == "mope_teacher_permuted"
    assert CATALOG["ghanet_permuted"].uses_rna and CATALOG["student_kd_permuted"].uses_rna
    assert not CATALOG["student_kd_self"].uses_rna  # its teacher is wsi_abmil
    assert CATALOG["student_kd_self"].teacher == "wsi_abmil"
    assert not CATALOG["wsi_meanpool"].uses_rna and CATALOG["wsi_meanpool"].histology_only
    assert controls_of("student_kd") == ["student_kd_permuted", "student_kd_self"]
    assert with_teachers(["student_kd_permuted"]) == ["teacher_fusion_permuted",
                                                      "student_kd_permuted"]


def test_permutation_keeps_each_roles_vectors_and_breaks_the_link():
    rng = np.random.default_rng(0)
    records = {role: [PatientRecord(f"{role}{i}", 1.0, 1, 0, [], None if i % 5 == 0 else
                                    rng.normal(size=3)) for i in range(20)]
               for role in ("train", "val")}
    out = permute_privileged(records, np.random.default_rng(7))
    again = permute_privileged(records, np.random.default_rng(7))
    for role, recs in records.items():
        new = out[role]
        assert [r.patient for r in new] == [r.patient for r in recs]
        assert [r.pathways is None for r in new] == [r.pathways is None for r in recs]
        have = [i for i, r in enumerate(recs) if r.pathways is not None]
        before = np.stack([recs[i].pathways for i in have])
        after = np.stack([new[i].pathways for i in have])
        np.testing.assert_array_equal(np.sort(before, axis=0), np.sort(after, axis=0))
        assert (before != after).any(axis=1).sum() > len(have) // 2  # most patients moved
        np.testing.assert_array_equal(after, np.stack([again[role][i].pathways for i in have]))


PARAMS = TrainParams(epochs=2, min_epochs=1, patience=2, lr=1e-3, batch_patients=2,
                     max_patches=16, n_bins=2, hidden=8, n_groups=3)


def _train(p, model, out, teacher=None, pathways="pathways", **kw):
    train_fold(model, 0, p["folds"], p["clinical"], p["samples"], p["features"],
               p[pathways] if pathways else None, out, PARAMS, teacher_dir=teacher, **kw)
    return (pd.read_csv(out / "predictions.tsv", sep="\t"),
            json.loads((out / "meta.json").read_text()))


def test_permuted_twin_trains_like_its_model_on_shuffled_vectors(tiny_pipeline, tmp_path):
    base, meta = _train(tiny_pipeline, "ghanet", tmp_path / "g")
    twin, twin_meta = _train(tiny_pipeline, "ghanet_permuted", tmp_path / "gp")
    assert meta["control"] is None and twin_meta["control"] == "permuted"
    assert twin_meta["structure"].keys() == meta["structure"].keys()
    assert list(twin["patient"]) == list(base["patient"])
    assert not np.allclose(twin["risk"], base["risk"])  # the vector it learnt from differs


def test_self_distillation_reads_no_rna_and_learns_from_its_teacher(tiny_pipeline, tmp_path):
    _train(tiny_pipeline, "wsi_abmil", tmp_path / "abmil", pathways=None)
    kd, meta = _train(tiny_pipeline, "student_kd_self", tmp_path / "self",
                      teacher=tmp_path / "abmil", pathways=None)
    assert meta["control"] == "self" and not any(meta["skipped_without_rna"].values())
    pathways = pd.read_parquet(tiny_pipeline["pathways"])
    assert set(kd["patient"]) - set(pathways.index)  # patients without RNA are trained on
    history = pd.read_csv(tmp_path / "self" / "history.tsv", sep="\t")
    assert (history.filter(like="kd").to_numpy() > 0).any()  # the teacher's signal is used


def test_meta_records_every_candidate_and_the_bag_agreement(tiny_pipeline, tmp_path):
    tune = TuneParams(budget=3, space={"common": {"lr": [1e-4, 1e-2], "dropout": [0.1]}})
    _, meta = _train(tiny_pipeline, "wsi_abmil", tmp_path / "a", tune=tune)
    tuning = meta["tuning"]
    assert tuning["budget"] == 3 and tuning["family"] == "wsi_abmil"
    assert tuning["criterion"] == "cindex"
    assert [t["params"] for t in tuning["trials"]][0] == {}
    assert {t["params"]["lr"] for t in tuning["trials"][1:]} == {1e-4, 1e-2}
    chosen = tuning["trials"][tuning["chosen"]]["params"]
    assert meta["train_params"]["lr"] == chosen.get("lr", PARAMS.lr)
    agree = meta["bag_agreement"]
    assert agree["max_patches"] == 16 and agree["val_patients"] == meta["n_patients"]["val"]
    assert agree["spearman"] is None or -1 <= agree["spearman"] <= 1
