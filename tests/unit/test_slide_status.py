"""wsi.on_slide_error: exclude turns a bad slide into explicit failed outputs; stop raises."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from histodistill.errors import SlideError
from histodistill.features.extract import SlideJob, extract_features
from histodistill.training.data import usable_slides
from histodistill.wsi.segmentation import SegmentationParams, segment_slide
from histodistill.wsi.status import excluded_slides, failure_summary, h5_status
from histodistill.wsi.tiling import TilingParams, tile_slide
from histodistill.wsi.write import write_pyramidal_tiff


def _outputs(tmp_path, name):
    return (tmp_path / f"{name}.geojson", tmp_path / f"{name}.png", tmp_path / f"{name}.p.h5",
            tmp_path / f"{name}.f.h5")


@pytest.mark.parametrize("kind", ["corrupt", "blank"])
def test_excluded_slide_gets_failed_outputs_at_every_step(tmp_path, kind):
    slide = tmp_path / f"{kind}.tiff"
    if kind == "corrupt":
        slide.write_bytes(b"II*\x00" + b"\x00" * 64)  # a TIFF header and nothing else
        reason = "no image directory"
    else:
        write_pyramidal_tiff(slide, np.full((512, 512, 3), 245, np.uint8), mpp=0.5)
        reason = "no tissue found"
    geojson, png, patches, features = _outputs(tmp_path, kind)
    with pytest.raises(SlideError, match=f"slide '{kind}'.*{reason}"):
        segment_slide(slide, kind, geojson, png, SegmentationParams())
    assert not geojson.exists() and not png.exists()

    summary = segment_slide(slide, kind, geojson, png, SegmentationParams(), on_error="exclude")
    assert summary["status"] == "failed" and reason in summary["reason"]
    doc = json.loads(geojson.read_text())
    assert doc["features"] == [] and doc["properties"]["status"] == "failed"
    assert png.stat().st_size > 1000  # the QC card states the reason
    assert tile_slide(slide, kind, geojson, patches, TilingParams(112.0, 112, 0.5),
                      tissue_qc_png=png, out_qc_png=tmp_path / "tiles.png") == 0
    assert (tmp_path / "tiles.png").read_bytes()[:8] == png.read_bytes()[:8]  # the card
    assert h5_status(patches)[0] == "failed" and reason in h5_status(patches)[1]
    job = SlideJob(kind, str(slide), str(patches), str(features))
    assert extract_features([job], "resnet18_trunc", None, batch_size=8) == {kind: 0}
    with h5py.File(features, "r") as f:
        assert f["features"].shape == (0, 256) and f.attrs["status"] == "failed"
        assert f.attrs["extractor"] == "resnet18_trunc" and reason in f.attrs["reason"]


def test_training_leaves_failed_slides_and_their_patients_out(tmp_path):
    paths = []
    for slide, status in (("A1", "ok"), ("A2", "failed"), ("B1", "failed")):
        path = tmp_path / f"{slide}.h5"
        with h5py.File(path, "w") as f:
            f.create_dataset("features", data=np.zeros((0 if status == "failed" else 3, 4)))
            f.attrs.update({"status": status, "reason": "corrupt" if status == "failed" else ""})
        paths.append(str(path))
    slides_of = {"A": ["A1", "A2"], "B": ["B1"]}
    assert usable_slides(slides_of, paths) == {"A2": "corrupt", "B1": "corrupt"}
    assert slides_of == {"A": ["A1"], "B": []}


def test_bad_on_error_value_is_refused(tmp_path):
    with pytest.raises(Exception, match="on_slide_error must be"):
        segment_slide(tmp_path / "x.tiff", "x", tmp_path / "g", tmp_path / "p",
                      SegmentationParams(), on_error="skip")


def test_the_end_of_run_summary_lists_each_excluded_slide_once(tmp_path):
    def h5(name, **attrs):
        path = tmp_path / name
        path.parent.mkdir(exist_ok=True)
        with h5py.File(path, "w") as f:
            f.attrs.update(attrs)
        return path

    failed = {"status": "failed", "reason": "format not recognised"}
    files = {"c1": [h5("patches/good.h5", status="ok"), h5("patches/bad.h5", **failed),
                    tmp_path / "patches" / "not_yet.h5", h5("features/bad.h5", **failed)],
             "c2": [h5("features/late.h5", **failed)]}
    excluded = excluded_slides(files)
    assert excluded == [("c1", "bad", "format not recognised"),
                        ("c2", "late", "format not recognised")]
    text = failure_summary(excluded)
    assert text.startswith("histodistill: 2 slides FAILED") and "c1/bad: format" in text
    assert failure_summary([]) == ""
    many = failure_summary([("c", f"s{i}", "x") for i in range(25)], limit=20)
    assert "... and 5 more" in many and "c/s19" in many and "c/s20" not in many
