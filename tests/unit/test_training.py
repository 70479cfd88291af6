"""Training one fold: outputs, honesty (fold-fitted scaling, roles), determinism."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from histodistill.errors import InputError
from histodistill.training.fold import load_trained, train_fold
from histodistill.training.loop import Batcher, TrainParams, predict
from histodistill.training.privileged import Privileged
from histodistill.training.task import Task

PARAMS = TrainParams(epochs=3, min_epochs=1, patience=2, lr=1e-3, batch_patients=2,
                     max_patches=32, n_bins=2, hidden=16)


def run(tiny_pipeline, model, out, fold=0, teacher=None, params=PARAMS, **kwargs):
    p = tiny_pipeline
    train_fold(model, fold, p["folds"], p["clinical"], p["samples"], p["features"],
               p["pathways"], out, params, teacher_dir=teacher, **kwargs)
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


@pytest.fixture(scope="module")
def mope_teacher(tiny_pipeline, tmp_path_factory):
    out = tmp_path_factory.mktemp("mope_teacher")
    run(tiny_pipeline, "mope_teacher", out)
    return out


def reloaded_predictions(model_dir, tiny_pipeline, preds):
    """Predict the test patients again from the saved checkpoint alone."""
    from histodistill.sheets import patient_slides, read_samples
    from histodistill.training.data import FeatureBank
    from histodistill.training.fold import _records_by_role

    model, transform, meta = load_trained(model_dir)
    bank = FeatureBank({Path(f).stem: Path(f) for f in tiny_pipeline["features"]})
    test = preds[preds["role"] == "test"]
    clinical = pd.read_csv(tiny_pipeline["clinical"], sep="\t", index_col=0,
                           dtype={"patient": str})
    slides = patient_slides(read_samples(tiny_pipeline["samples"], check_files=False))
    recs, _ = _records_by_role({"test": test["patient"].tolist()}, clinical, slides,
                               pd.DataFrame(columns=meta["pathways"]),
                               np.asarray(meta["bin_cuts"]), None, False, True)
    again = predict(model, recs["test"], Batcher(bank, None, np.random.default_rng(0)),
                    transform, Task())
    return test["risk"].to_numpy(), again["risk"].to_numpy()


@pytest.mark.parametrize("name", ["ghanet", "bidistill", "mope"])
def test_distilled_students_train_and_predict_from_histology_alone(tiny_pipeline, name,
                                                                    mope_teacher, tmp_path):
    teacher = mope_teacher if name == "mope" else None
    preds = run(tiny_pipeline, name, tmp_path, teacher=teacher)
    pathways = pd.read_parquet(tiny_pipeline["pathways"])
    assert set(preds["patient"]) - set(pathways.index)  # patients without RNA are used
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert sum(meta["without_privileged"].values()) > 0
    history = pd.read_csv(tmp_path / "history.tsv", sep="\t")
    expected = {"ghanet": "train_recon_loss", "bidistill": "train_multi_task_loss",
                "mope": "train_usage_kl_loss"}[name]
    assert (history[expected] > 0).all()
    saved, again = reloaded_predictions(tmp_path, tiny_pipeline, preds)
    np.testing.assert_allclose(saved, again, rtol=1e-5)
    if name == "mope":
        usage = preds.filter(like="usage:")
        assert usage.shape[1] == len(pathways.columns)
        np.testing.assert_allclose(usage.sum(axis=1), 1.0, rtol=1e-5)
        assert len(meta["structure"]["reconstructibility"]) == len(pathways.columns)
    if name == "ghanet":
        groups = meta["structure"]["groups"]
        assert sorted(sum(groups, [])) == list(range(len(pathways.columns)))


def test_distilled_student_is_deterministic(tiny_pipeline, tmp_path):
    a = run(tiny_pipeline, "bidistill", tmp_path / "a")
    b = run(tiny_pipeline, "bidistill", tmp_path / "b")
    pd.testing.assert_frame_equal(a, b)


def test_binary_task_predicts_probabilities_and_skips_unlabelled(tiny_pipeline, tmp_path):
    clinical = pd.read_csv(tiny_pipeline["clinical"], sep="\t", dtype={"patient": str})
    clinical.loc[0, "metastasis"] = np.nan  # one patient with an unknown endpoint
    sheet = tmp_path / "clinical.tsv"
    clinical.to_csv(sheet, sep="\t", index=False)
    p = {**tiny_pipeline, "clinical": sheet}
    out = tmp_path / "t"
    train_fold("teacher_fusion", 0, p["folds"], sheet, p["samples"], p["features"],
               p["pathways"], out, PARAMS, task=Task("binary", "metastasis"))
    preds = pd.read_csv(out / "predictions.tsv", sep="\t", dtype={"patient": str})
    assert preds["risk"].between(0, 1).all() and set(preds["label"]) <= {0, 1}
    assert clinical.loc[0, "patient"] not in set(preds["patient"])
    meta = json.loads((out / "meta.json").read_text())
    assert meta["bin_cuts"] == [] and meta["dims"]["n_out"] == 1
    assert sum(meta["skipped_without_label"].values()) == 1
    student = run(p, "student_kd", tmp_path / "s", teacher=out,
                  task=Task("binary", "metastasis"))
    assert "surv_0" not in student.columns
    with pytest.raises(InputError, match="another fold, split, task"):
        run(tiny_pipeline, "student_kd", tmp_path / "x", teacher=out)  # survival vs binary


def test_task_and_privileged_config_errors(tiny_pipeline):
    with pytest.raises(InputError, match="endpoint"):
        Task("binary")
    with pytest.raises(InputError, match="unknown keys"):
        Task.from_config({"typ": "binary"})
    clinical = pd.read_csv(tiny_pipeline["clinical"], sep="\t", index_col=0)
    with pytest.raises(InputError, match="'stage' is not a column"):
        Task("binary", "stage").labels(clinical)
    with pytest.raises(InputError, match="needs privileged.covariates"):
        Privileged("clinical")
    with pytest.raises(InputError, match=r"\['stage'\] are not columns"):
        Privileged("both", ["stage"]).table(pd.DataFrame(), clinical, "c.tsv")


def test_clinical_covariates_as_the_privileged_modality(tiny_pipeline, tmp_path):
    priv = Privileged("both", ["age", "grade"])
    preds = run(tiny_pipeline, "bidistill", tmp_path, privileged=priv)
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["pathways"][-2:] == ["clinical:age", "clinical:grade"]
    assert len(preds) > 0


def test_feature_cache_is_bounded_and_bags_are_unchanged(tiny_pipeline):
    from histodistill.training.data import FeatureBank

    paths = {Path(f).stem: Path(f) for f in tiny_pipeline["features"]}
    slides = sorted(paths)[:3]
    unbounded, bounded = FeatureBank(paths), FeatureBank(paths, cache_mb=0.0)
    for _ in range(2):
        np.testing.assert_array_equal(unbounded.bag(slides), bounded.bag(slides))
    assert bounded.cached_bytes == 0 and not bounded._bags
    assert unbounded.cached_bytes == sum(b.nbytes for b in unbounded._bags.values()) > 0


def test_a_gpu_request_without_a_gpu_is_a_clear_error(tiny_pipeline, tmp_path):
    from histodistill.errors import HistodistillError

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(HistodistillError, match="train.device is 'cuda' but no CUDA GPU"):
        run(tiny_pipeline, "wsi_abmil", tmp_path,
            params=TrainParams(**{**PARAMS.__dict__, "device": "cuda"}))
    auto = run(tiny_pipeline, "wsi_abmil", tmp_path / "auto",
               params=TrainParams(**{**PARAMS.__dict__, "device": "auto"}))
    cpu = run(tiny_pipeline, "wsi_abmil", tmp_path / "cpu")
    pd.testing.assert_frame_equal(auto, cpu)


def test_a_model_without_rna_needs_no_pathway_table_and_gives_the_same_result(tiny_pipeline,
                                                                               tmp_path):
    """wsi_abmil never reads the pathway table (the workflow does not give it one, so an RNA
    change does not retrain it): with or without the table it predicts the same numbers."""
    p = tiny_pipeline
    with_table = run(p, "wsi_abmil", tmp_path / "with")
    train_fold("wsi_abmil", 0, p["folds"], p["clinical"], p["samples"], p["features"], None,
               tmp_path / "without", PARAMS)
    without = pd.read_csv(tmp_path / "without" / "predictions.tsv", sep="\t",
                          dtype={"patient": str})
    pd.testing.assert_frame_equal(with_table, without)
    assert json.loads((tmp_path / "without" / "meta.json").read_text())["pathways"] == []
    with pytest.raises(InputError, match="pathway table"):
        train_fold("rna_snn", 0, p["folds"], p["clinical"], p["samples"], p["features"], None,
                   tmp_path / "rna", PARAMS)
