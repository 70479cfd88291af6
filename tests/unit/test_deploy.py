"""Final models: bundle round trip, scoring of a slide-only cohort, refusals, external
validation (survival and binary)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from histodistill.deploy.bundle import FinalModel, bundle_model
from histodistill.deploy.external import validate_external
from histodistill.deploy.manifest import read_manifest
from histodistill.deploy.score import score_cohort
from histodistill.errors import InputError
from histodistill.evaluation.evaluate import EvalParams, read_predictions
from histodistill.training.task import Task

TILING = {"patch_um": 112.0, "patch_px": 112, "min_tissue_fraction": 0.5}
PARAMS = EvalParams(n_bootstrap=50, horizons=(6.0, 12.0))


def _bundle(files: list[str], model: str, out: Path, task: Task | None = None) -> Path:
    bundle_model(model, files, "tiny", out / "manifest.json", out / "weights.safetensors",
                 TILING, PARAMS, task or Task(), code_version="test")
    return out


@pytest.fixture(scope="module")
def bundles(tiny_models, tmp_path_factory):
    root = tmp_path_factory.mktemp("bundles")
    return {m: _bundle(tiny_models[m], m, root / m) for m in ("wsi_abmil", "mope",
                                                                "wsi_meanpool", "ghanet")}


def _score(bundle: Path, pipeline: dict, out: Path, name: str = "m",
           features: list[str] | None = None) -> pd.DataFrame:
    return score_cohort(bundle, name, pipeline["samples"], features or pipeline["features"],
                        out / f"{name}.tsv", out / f"attention_{name}", n_patients=1)


@pytest.mark.parametrize("model", ["wsi_abmil", "mope", "wsi_meanpool", "ghanet"])
def test_scores_equal_the_mean_of_the_fold_models_in_workflow_predictions(
        model, bundles, tiny_models, tiny_pipeline, tmp_path):
    preds = _score(bundles[model], tiny_pipeline, tmp_path, model)
    in_workflow = read_predictions(tiny_models[model]).groupby("patient")["risk"].mean()
    scored = preds.set_index("patient")
    assert (scored["status"] == "scored").all()
    assert np.allclose(scored.loc[in_workflow.index, "risk"], in_workflow, rtol=1e-5,
                       atol=1e-6)
    manifest = read_manifest(bundles[model])
    assert manifest["threshold"]["value"] == pytest.approx(np.median(in_workflow), rel=1e-6)
    high = scored["risk"] > manifest["threshold"]["value"]
    assert (scored.loc[high, "risk_group"] == "high").all()
    assert (scored.loc[~high, "risk_group"] == "low").all()
    surv = scored[[c for c in scored if c.startswith("surv_")]].to_numpy()
    assert surv.shape[1] == len(manifest["survival_times"])
    assert (np.diff(surv, axis=1) <= 1e-9).all() and ((surv >= 0) & (surv <= 1)).all()
    index = pd.read_csv(tmp_path / f"attention_{model}" / "index.tsv", sep="\t")
    if model == "wsi_meanpool":  # uniform weights: nothing to draw
        assert index.empty
    else:
        assert set(index["group"]) == {"high", "low"} and (index["fold"] == "final").all()
    if model == "mope":
        usage = scored[[c for c in scored if c.startswith("usage:")]]
        assert usage.shape[1] > 0 and np.allclose(usage.sum(axis=1), 1.0, atol=1e-5)


def test_manifest_holds_what_scoring_needs(bundles):
    m = read_manifest(bundles["wsi_abmil"])
    assert m["construction"]["kind"] == "fold_ensemble" and len(m["members"]) == 2
    assert m["extractor"]["name"] == "resnet18_trunc"
    assert len(m["extractor"]["weights_sha256"]) == 64
    assert m["extractor"]["random_weights"] is True
    assert m["tiling"] == TILING and m["task"] == {"type": "survival", "endpoint": None}
    cv = {r["metric"]: r for r in m["training"]["cv_metrics"]}
    assert {"cindex", "cindex_uno", "ibs", "logrank_p"} <= set(cv)
    assert cv["cindex"]["ci_low"] <= cv["cindex"]["value"] <= cv["cindex"]["ci_high"]
    assert m["training"]["n_patients"] == 12 and m["provenance"]["bundle_code"] == "test"


def test_a_bundle_copied_elsewhere_scores_the_same_from_another_directory(
        bundles, tiny_pipeline, tmp_path, monkeypatch):
    copy = tmp_path / "elsewhere" / "my_model"
    shutil.copytree(bundles["wsi_abmil"], copy)
    here = _score(bundles["wsi_abmil"], tiny_pipeline, tmp_path / "a")
    work = tmp_path / "other_project"
    work.mkdir()
    monkeypatch.chdir(work)
    there = _score(Path("..") / "elsewhere" / "my_model", tiny_pipeline, Path("out"))
    pd.testing.assert_frame_equal(here, there)


def test_scoring_reads_no_rna_and_no_clinical_sheet(bundles, tiny_pipeline, tmp_path):
    """Only the sample sheet, the slides' features and the bundle exist: scoring works."""
    src = Path(tiny_pipeline["samples"])
    isolated = tmp_path / "cohort"
    (isolated / "features").mkdir(parents=True)
    sheet = pd.read_csv(src, sep="\t")
    sheet["path"] = [str((src.parent / p).resolve()) for p in sheet["path"]]
    sheet.to_csv(isolated / "samples.tsv", sep="\t", index=False)
    feats = [shutil.copy(f, isolated / "features") for f in tiny_pipeline["features"]]
    preds = score_cohort(bundles["mope"], "mope", isolated / "samples.tsv", feats,
                         isolated / "p.tsv", isolated / "att", n_patients=1)
    assert (preds["status"] == "scored").all()
    assert not list(isolated.rglob("*rna*")) and not list(isolated.rglob("*clinical*"))


def _tampered(features: list[str], tmp_path: Path, edit) -> list[str]:
    out = []
    for i, f in enumerate(features):
        dst = tmp_path / Path(f).name
        shutil.copy(f, dst)
        if i == 3:
            with h5py.File(dst, "r+") as h5:
                edit(h5)
        out.append(str(dst))
    return out


@pytest.mark.parametrize("edit, mismatch", [
    (lambda h5: h5.attrs.__setitem__("extractor", "uni"), "extractor 'uni'"),
    (lambda h5: h5.attrs.__setitem__("weights_sha256", "0" * 64), "weights sha256"),
    (lambda h5: h5["coords"].attrs.__setitem__("patch_size_um", 224.0), "tile size (um)"),
    (lambda h5: h5["coords"].attrs.__setitem__("patch_size", 224), "tile size (px)"),
])
def test_features_of_another_extractor_or_tiling_are_refused(bundles, tiny_pipeline, tmp_path,
                                                            edit, mismatch):
    feats = _tampered(tiny_pipeline["features"], tmp_path, edit)
    with pytest.raises(InputError) as err:
        _score(bundles["wsi_abmil"], tiny_pipeline, tmp_path, features=feats)
    slide = Path(feats[3]).stem
    assert mismatch in str(err.value) and repr(slide) in str(err.value)
    assert str(bundles["wsi_abmil"]) in str(err.value)
    assert not (tmp_path / "m.tsv").exists()  # nothing written that looks done


def test_another_feature_dimension_is_refused(bundles, tiny_pipeline, tmp_path):
    def wider(h5):
        data = h5["features"][:]
        del h5["features"]
        h5.create_dataset("features", data=np.c_[data, data])
    feats = _tampered(tiny_pipeline["features"], tmp_path, wider)
    with pytest.raises(InputError, match="feature dimension 512, the bundle was trained on 256"):
        _score(bundles["wsi_abmil"], tiny_pipeline, tmp_path, features=feats)


def test_a_patient_with_a_failed_slide_is_not_scored_from_a_partial_bag(
        bundles, tiny_pipeline, tmp_path):
    from histodistill.wsi.status import failed_attrs

    feats = _tampered(tiny_pipeline["features"], tmp_path,
                      lambda h5: h5.attrs.update(failed_attrs("x", "unreadable tile")))
    preds = _score(bundles["wsi_abmil"], tiny_pipeline, tmp_path, features=feats).set_index(
        "patient")
    samples = pd.read_csv(tiny_pipeline["samples"], sep="\t")
    victim = samples.set_index("slide").loc[Path(feats[3]).stem, "patient"]
    assert preds.at[victim, "status"] == "not_scored" and np.isnan(preds.at[victim, "risk"])
    assert "unreadable tile" in preds.at[victim, "reason"]
    assert (preds.drop(index=victim)["status"] == "scored").all()


def test_corrupt_weights_and_foreign_manifests_are_refused(bundles, tmp_path):
    copy = tmp_path / "b"
    shutil.copytree(bundles["wsi_abmil"], copy)
    with open(copy / "weights.safetensors", "r+b") as f:
        f.seek(-4, os.SEEK_END)
        f.write(b"\0\0\0\1")
    with pytest.raises(InputError, match="does not match the sha256"):
        FinalModel(copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["task"]["type"] = "regression"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match=r"not a histodistill model bundle manifest \(task/type"):
        read_manifest(copy)
    with pytest.raises(InputError, match="cannot read manifest.json"):
        read_manifest(tmp_path / "nothing_here")


def test_external_validation_metrics_and_paired_comparison(bundles, tiny_pipeline, tmp_path):
    names = ("wsi_abmil", "mope")
    preds = {n: tmp_path / f"{n}.tsv" for n in names}
    for n in names:
        _score(bundles[n], tiny_pipeline, tmp_path, n)
    metrics = validate_external(preds, {n: bundles[n] / "manifest.json" for n in names},
                                tiny_pipeline["clinical"], tmp_path / "metrics.tsv",
                                tmp_path / "cindex.png",
                                {n: tmp_path / f"km_{n}.png" for n in names}, PARAMS)
    rows = metrics.set_index(["model", "metric"])
    for n in names:
        for metric in ("cindex", "cindex_uno", "td_auc_6", "ibs", "logrank_p"):
            assert np.isfinite(rows.at[(n, metric), "value"]), (n, metric)
        assert rows.at[(n, "cindex"), "n_patients"] == 12
        assert (tmp_path / f"km_{n}.png").stat().st_size > 1000
    assert np.isfinite(rows.at[("mope", "cindex_diff_vs_wsi_abmil"), "ci_low"])
    # the same definition as the CV's: Harrell's c-index of the scored risks
    from histodistill.concordance import harrell_cindex
    test = pd.read_csv(preds["mope"], sep="\t").merge(
        pd.read_csv(tiny_pipeline["clinical"], sep="\t"), on="patient")
    assert rows.at[("mope", "cindex"), "value"] == pytest.approx(
        harrell_cindex(test["time"], test["event"], test["risk"]))


def test_binary_task_bundle_scores_and_validates(tiny_pipeline, tmp_path):
    from histodistill.training.fold import train_fold
    from histodistill.training.loop import TrainParams

    p, task = tiny_pipeline, Task("binary", "metastasis")
    params = TrainParams(epochs=2, min_epochs=1, hidden=8, max_patches=16)
    files = []
    for fold in (0, 1):
        out = tmp_path / "train" / f"fold{fold}"
        train_fold("wsi_abmil", fold, p["folds"], p["clinical"], p["samples"], p["features"],
                   None, out, params, task=task)
        files.append(str(out / "predictions.tsv"))
    bundle = _bundle(files, "wsi_abmil", tmp_path / "bundle", task)
    manifest = read_manifest(bundle)
    assert manifest["task"] == {"type": "binary", "endpoint": "metastasis"}
    assert "survival_times" not in manifest and "Youden" in manifest["threshold"]["rule"]
    preds = _score(bundle, p, tmp_path)
    assert set(preds["risk_group"]) <= {"positive", "negative"}
    assert ((preds["risk"] >= 0) & (preds["risk"] <= 1)).all()
    assert np.allclose(preds.set_index("patient")["risk"].sort_index(),
                       read_predictions(files).groupby("patient")["risk"].mean().sort_index(),
                       rtol=1e-5)
    metrics = validate_external({"wsi_abmil": tmp_path / "m.tsv"},
                                {"wsi_abmil": bundle / "manifest.json"}, p["clinical"],
                                tmp_path / "metrics.tsv", tmp_path / "auc.png",
                                {"wsi_abmil": tmp_path / "roc.png"}, PARAMS)
    assert {"auc", "average_precision", "balanced_accuracy"} <= set(metrics["metric"])
