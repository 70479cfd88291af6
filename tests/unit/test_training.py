"""Training one fold: outputs, honesty (fold-fitted scaling, roles), determinism."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from histodistill.errors import InputError
from histodistill.training.fold import load_trained, train_fold
from histodistill.training.loop import TrainParams

PARAMS = TrainParams(epochs=3, min_epochs=1, patience=2, lr=1e-3, batch_patients=2,
                     max_patches=32, n_bins=2, hidden=16)


def run(tiny_pipeline, model, out, fold=0, teacher=None, params=PARAMS):
    p = tiny_pipeline
    train_fold(model, fold, p["folds"], p["clinical"], p["samples"], p["features"],
               p["pathways"], out, params, teacher_dir=teacher)
    return pd.read_csv(out / "predictions.tsv", sep="\t", dtype={"patient": str})


@pytest.fixture(scope="module")
def teacher(tiny_pipeline, tmp_path_factory):
    out = tmp_path_factory.mktemp("teacher")
    run(tiny_pipeline, "teacher_fusion", out)
    return out


def test_outputs_roles_and_fold_fitted_scaling(tiny_pipeline, teacher):
    preds = pd.read_csv(teacher / "predictions.tsv", sep="\t")
    folds = pd.read_csv(tiny_pipeline["folds"], sep="\t")
    fold0 = folds[folds["fold"] == 0].set_index("patient")["role"]
    assert (preds.set_index("patient")["role"] == fold0.loc[preds["patient"]]).all()
    assert {"risk", "surv_0", "surv_1", "time", "event"} <= set(preds.columns)
    meta = json.loads((teacher / "meta.json").read_text())
    pathways = pd.read_parquet(tiny_pipeline["pathways"])
    train = [p for p in fold0[fold0 == "train"].index if p in pathways.index]
    np.testing.assert_allclose(meta["scaler"]["mean"], pathways.loc[train].mean().to_numpy())
    times = pd.read_csv(tiny_pipeline["clinical"], sep="\t", index_col=0)
    train_events = times.loc[fold0[fold0 == "train"].index].query("event == 1")["time"]
    assert meta["bin_cuts"] == pytest.approx([train_events.median()])
    assert meta["features"]["random_weights"] is True
    assert sum(meta["skipped_without_rna"].values()) > 0  # teacher needs RNA


def test_rna_models_skip_patients_without_rna_students_do_not(tiny_pipeline, teacher, tmp_path):
    pathways = pd.read_parquet(tiny_pipeline["pathways"])
    t_preds = pd.read_csv(teacher / "predictions.tsv", sep="\t")
    assert set(t_preds["patient"]) <= set(pathways.index)
    s_preds = run(tiny_pipeline, "student_kd", tmp_path, teacher=teacher)
    assert set(s_preds["patient"]) - set(pathways.index)  # patients without RNA are scored
    history = pd.read_csv(tmp_path / "history.tsv", sep="\t")
    assert (history["train_kd_loss"] > 0).all()


def test_same_seed_same_numbers(tiny_pipeline, tmp_path):
    a = run(tiny_pipeline, "wsi_abmil", tmp_path / "a")
    b = run(tiny_pipeline, "wsi_abmil", tmp_path / "b")
    pd.testing.assert_frame_equal(a, b)
    c = run(tiny_pipeline, "wsi_abmil", tmp_path / "c",
            params=TrainParams(**{**PARAMS.__dict__, "seed": 1}))
    assert not np.allclose(a["risk"], c["risk"])


def test_checkpoint_reloads_to_the_same_predictions(tiny_pipeline, teacher):
    model, transform, meta = load_trained(teacher)
    assert meta["model"] == "teacher_fusion"
    state = torch.load(teacher / "model.pt", weights_only=True)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_student_refuses_a_teacher_from_another_fold(tiny_pipeline, teacher, tmp_path):
    with pytest.raises(InputError, match="another fold"):
        run(tiny_pipeline, "student_kd", tmp_path, fold=1, teacher=teacher)
