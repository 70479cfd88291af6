"""Tissue segmentation: agreement with the painted truth, GeoJSON with holes, QC image."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from conftest import TEST_DATA
from histodistill.demo.tissue import paint_slide
from histodistill.errors import SlideError
from histodistill.wsi.geojson import Polygon, rasterize, read_geojson
from histodistill.wsi.segmentation import SegmentationParams, segment_slide, tissue_mask
from histodistill.wsi.write import write_pyramidal_tiff


@pytest.mark.parametrize("pallor", [-2.0, 0.0, 2.0])
@pytest.mark.parametrize("seed", [3, 4])
def test_mask_agrees_with_painted_tissue_even_when_pale(seed, pallor):
    img, truth = paint_slide(np.random.default_rng(seed), (1152, 1536), 0.5,
                             {"pallor": pallor, "nuclear_density": 0.0})
    thumb = cv2.resize(img, (96, 72), interpolation=cv2.INTER_AREA)
    mask = tissue_mask(thumb, 8.0, SegmentationParams())
    ref = cv2.resize(truth.astype(np.uint8), (96, 72), interpolation=cv2.INTER_AREA) > 0
    iou = (mask & ref).sum() / (mask | ref).sum()
    assert iou > 0.95


def _donut_slide(path, mpp=0.5):
    img = np.full((2048, 2048, 3), 242, np.uint8)
    cv2.circle(img, (1024, 1024), 800, (220, 140, 190), -1)
    cv2.circle(img, (1024, 1024), 250, (242, 242, 242), -1)  # a hole
    cv2.circle(img, (150, 150), 8, (120, 60, 140), -1)  # a speck: dropped
    write_pyramidal_tiff(path, img, mpp)
    return path


def test_geojson_has_polygon_with_hole_and_drops_specks(tmp_path):
    path = _donut_slide(tmp_path / "donut.tiff")
    summary = segment_slide(path, "donut", tmp_path / "t.geojson", tmp_path / "qc.png",
                            SegmentationParams())
    doc = json.loads((tmp_path / "t.geojson").read_text())
    assert doc["type"] == "FeatureCollection" and len(doc["features"]) == 1
    feat = doc["features"][0]
    assert feat["properties"]["objectType"] == "annotation"
    assert feat["properties"]["classification"]["name"] == "Tissue"
    rings = feat["geometry"]["coordinates"]
    assert len(rings) == 2 and all(r[0] == r[-1] for r in rings)  # closed exterior + hole
    expected_mm2 = np.pi * (800**2 - 250**2) * 0.5**2 / 1e6
    assert summary["tissue_mm2"] == pytest.approx(expected_mm2, rel=0.05)
    assert summary["n_holes"] == 1
    qc = cv2.imread(str(tmp_path / "qc.png"))
    assert qc is not None and qc.shape[:2] == (128, 128)
    polys, props = read_geojson(tmp_path / "t.geojson")
    assert props["slide"] == "donut" and len(polys[0].holes) == 1


def test_blank_slide_is_a_clear_error(tmp_path):
    path = tmp_path / "blank.tiff"
    write_pyramidal_tiff(path, np.full((1024, 1024, 3), 243, np.uint8), 0.5)
    with pytest.raises(SlideError, match="'blank'.*no tissue"):
        segment_slide(path, "blank", tmp_path / "b.geojson", tmp_path / "b.png",
                      SegmentationParams())
    assert not (tmp_path / "b.geojson").exists()


def test_real_aperio_slide(tmp_path):
    summary = segment_slide(TEST_DATA / "wsi" / "CMU-1-Small-Region.svs", "cmu1",
                            tmp_path / "c.geojson", tmp_path / "c.png", SegmentationParams())
    area_mm2 = 2220 * 2967 * 0.499**2 / 1e6
    assert summary["n_components"] >= 1
    assert 0.2 * area_mm2 < summary["tissue_mm2"] < 0.6 * area_mm2


def test_rasterize_keeps_islands_inside_holes():
    outer = Polygon(np.array([[0, 0], [100, 0], [100, 100], [0, 100]], float),
                    [np.array([[20, 20], [80, 20], [80, 80], [20, 80]], float)])
    island = Polygon(np.array([[40, 40], [60, 40], [60, 60], [40, 60]], float))
    mask = rasterize([island, outer], (100, 100), 1.0)
    assert mask[10, 10] == 1 and mask[30, 30] == 0 and mask[50, 50] == 1


@pytest.mark.parametrize("colour", [(40, 170, 90), (40, 60, 170), (25, 25, 30)])
def test_pen_strokes_are_not_tissue(colour):
    """Green, blue and black ink drawn across painted tissue are cut out of the mask."""
    img, truth = paint_slide(np.random.default_rng(3), (1152, 1536), 0.5,
                             {"pallor": 0.0, "nuclear_density": 0.0})
    ink = np.zeros(truth.shape, np.uint8)
    cv2.line(ink, (100, 300), (1400, 900), 1, 40)  # a 20 um wide stroke over the tissue
    img[ink > 0] = colour
    thumb = cv2.resize(img, (192, 144), interpolation=cv2.INTER_AREA)
    small = lambda m: cv2.resize(m.astype(np.uint8), (192, 144),  # noqa: E731
                                 interpolation=cv2.INTER_NEAREST) > 0
    mask = tissue_mask(thumb, 4.0, SegmentationParams())
    on_ink = small(ink)
    assert mask[on_ink].mean() < 0.05  # ink removed
    kept = small(truth & ~cv2.dilate(ink, np.ones((81, 81), np.uint8)).astype(bool))
    assert mask[kept].mean() > 0.95  # tissue away from the stroke kept
    unfiltered = tissue_mask(thumb, 4.0, SegmentationParams(pen_filter=False))
    assert unfiltered[on_ink & small(truth)].mean() > 0.5  # without the filter, ink is tissue


@pytest.mark.realdata
def test_pen_filter_on_real_tiles():
    from conftest import shared_file
    from histodistill.wsi.segmentation import pen_mask

    def tile(name):
        rgba = cv2.imread(str(shared_file("tiles", f"histolab_{name}.png")), cv2.IMREAD_COLOR)
        return cv2.cvtColor(rgba, cv2.COLOR_BGR2RGB)

    assert pen_mask(tile("medium-nuclei-score-green-pen-level1"), 1.0, 0).mean() > 0.3
    for clean in ("medium-nuclei-score-level0", "tissue-level2-3000-7666-7096-11763",
                  "high-nuclei-score-level0"):
        assert pen_mask(tile(clean), 1.0, 0).mean() < 0.005, clean
