"""Attention maps: drawn on the inference path for the right patients, and readable by QuPath."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from histodistill.errors import InputError
from histodistill.evaluation.attention import attention, select_patients
from histodistill.evaluation.group_summary import ghanet_summary, reconstruction_by_patient
from histodistill.evaluation.heatmaps import percentile
from histodistill.evaluation.pathway_summary import mope_summary


@pytest.fixture(scope="module")
def trained(tiny_models):
    return tiny_models


def test_select_patients_takes_both_ends_without_repeats():
    test = pd.DataFrame({"patient": list("abcde"), "fold": 0,
                         "risk": [0.5, 0.9, 0.1, 0.7, 0.3]})
    chosen = select_patients(test, 2)
    assert chosen[["group", "rank", "patient"]].values.tolist() == [
        ["high", 1, "b"], ["high", 2, "d"], ["low", 1, "c"], ["low", 2, "e"]]
    assert sorted(select_patients(test, 4)["patient"]) == list("abcde")  # 5 patients, none twice


def test_percentile_ranks_within_the_slide():
    np.testing.assert_allclose(percentile(np.array([0.2, 0.05, 0.5])), [50.0, 0.0, 100.0])


@pytest.mark.parametrize("model, extra", [("ghanet", "group:1"), ("mope", "expert:")])
def test_attention_maps_images_and_geojson(tiny_pipeline, trained, tmp_path, model, extra):
    p = tiny_pipeline
    out = tmp_path / model
    index = attention(model, trained[model], p["samples"], p["features"], out, 1)
    assert sorted(set(index["group"])) == ["high", "low"]
    preds = pd.concat([pd.read_csv(f, sep="\t") for f in trained[model]], ignore_index=True)
    test = preds[preds["role"] == "test"]
    assert index.loc[index["group"] == "high", "patient"].iloc[0] == \
        test.loc[test["risk"].idxmax(), "patient"]
    for patient, rows in index.groupby("patient"):
        total = 0.0
        for row in rows.itertuples():
            assert (out / f"{row.stem}_overlay.jpg").stat().st_size > 5000
            assert (out / f"{row.stem}_top_patches.jpg").stat().st_size > 5000
            doc = json.loads((out / f"{row.stem}_attention.geojson").read_text())
            assert len(doc["features"]) == row.n_patches
            assert doc["properties"]["patient"] == patient
            feat = doc["features"][0]
            ring = np.asarray(feat["geometry"]["coordinates"][0])
            assert ring.shape == (5, 2) and (ring[0] == ring[-1]).all()
            meas = [f["properties"]["measurements"] for f in doc["features"]]
            assert any(k.startswith(extra) for k in meas[0])
            assert all(0 <= m["attention percentile"] <= 100 for m in meas)
            total += sum(m["attention"] for m in meas)
        assert total == pytest.approx(1.0, abs=1e-4)  # one softmax over the patient's bag
    assert (out / "index.tsv").exists()


def test_changed_model_is_an_error_and_leaves_no_folder(tiny_pipeline, trained, tmp_path):
    p = tiny_pipeline
    tampered = tmp_path / "fold0"
    tampered.mkdir()
    src = trained["ghanet"][0].rsplit("/", 1)[0]
    for name in ("model.pt", "meta.json"):
        (tampered / name).write_bytes(Path(src, name).read_bytes())
    preds = pd.read_csv(trained["ghanet"][0], sep="\t")
    preds["risk"] += 1.0  # as if the checkpoint no longer produced these predictions
    preds.to_csv(tampered / "predictions.tsv", sep="\t", index=False)
    out = tmp_path / "maps"
    with pytest.raises(InputError, match="re-run train"):
        attention("ghanet", [str(tampered / "predictions.tsv")], p["samples"],
                  p["features"], out, 1)
    assert not out.exists() and not list(tmp_path.glob(".maps.tmp-*"))


def test_mope_summary_of_usage_and_reconstructibility(trained, tmp_path):
    table = mope_summary(trained["mope"], tmp_path / "mope.tsv", tmp_path / "mope.png",
                         trained["mope_teacher"])
    metas = [json.loads(Path(f).with_name("meta.json").read_text()) for f in trained["mope"]]
    assert sorted(table["pathway"]) == sorted(metas[0]["pathways"])
    assert table["usage_mean"].sum() == pytest.approx(1.0, abs=1e-5)
    assert table["usage_mean"].is_monotonic_decreasing
    first = table.iloc[0]
    k = metas[0]["pathways"].index(first["pathway"])
    assert first["reconstructibility_mean"] == pytest.approx(
        np.mean([m["structure"]["reconstructibility"][k] for m in metas]))
    assert (tmp_path / "mope.png").stat().st_size > 5000
    teacher = pd.concat(pd.read_csv(f, sep="\t") for f in trained["mope_teacher"])
    teacher = teacher[teacher["role"] == "test"]
    assert table["teacher_usage_mean"].sum() == pytest.approx(1.0, abs=1e-5)
    assert first["teacher_usage_mean"] == pytest.approx(
        teacher[f"usage:{first['pathway']}"].mean())
    with pytest.raises(InputError, match="no usage"):
        mope_summary(trained["mope"], tmp_path / "m.tsv", tmp_path / "m.png",
                     trained["wsi_abmil"])


def test_ghanet_groups_reconstructed_on_test_patients_only(tiny_pipeline, trained, tmp_path):
    p = tiny_pipeline
    args = (trained["ghanet"], p["clinical"], p["samples"], p["features"], p["pathways"])
    per_patient = reconstruction_by_patient(*args)
    for f in trained["ghanet"]:
        preds = pd.read_csv(f, sep="\t", dtype={"patient": str})
        fold = int(preds["fold"].iloc[0])
        test = set(preds.loc[preds["role"] == "test", "patient"])
        assert set(per_patient.loc[per_patient["fold"] == fold, "patient"]) <= test
    assert per_patient["cosine"].between(-1, 1).all() and (per_patient["mse"] >= 0).all()
    table = ghanet_summary(*args, tmp_path / "g.tsv", tmp_path / "g.png")
    meta = json.loads(Path(trained["ghanet"][0]).with_name("meta.json").read_text())
    first = table[(table["fold"] == meta["fold"]) & (table["group"] == 1)].iloc[0]
    assert first["members"] == ", ".join(meta["pathways"][i]
                                         for i in meta["structure"]["groups"][0])
    assert (tmp_path / "g.png").stat().st_size > 5000
