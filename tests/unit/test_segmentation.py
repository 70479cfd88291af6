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
from histodistill.wsi.segmentation import (
    HOLE_RGB,
    OUTLINE_RGB,
    QC_MAX_PX,
    SegmentationParams,
    qc_mpp,
    segment_slide,
    tissue_mask,
)
from histodistill.wsi.slide import SlideInfo
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
    # the QC image of this 1 mm "biopsy" is drawn at level 0 (2,048 px), not the 8 um/px
    # mask thumbnail (128 px), with a yellow outline and a cyan hole on black halos
    qc = cv2.cvtColor(cv2.imread(str(tmp_path / "qc.png")), cv2.COLOR_BGR2RGB)
    assert qc.shape[:2] == (2048, 2048)
    yellow = np.all(qc == OUTLINE_RGB, axis=-1)
    cyan = np.all(qc == HOLE_RGB, axis=-1)
    assert yellow.sum() > 2 * np.pi * 800 and cyan.sum() > 2 * np.pi * 250
    ys, xs = np.nonzero(cyan)
    assert np.hypot(xs - 1024, ys - 1024).mean() == pytest.approx(250, abs=8)
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


def _painted(seed=3):
    img, truth = paint_slide(np.random.default_rng(seed), (1152, 1536), 0.5,
                             {"pallor": 0.0, "nuclear_density": 0.0})
    return img, truth


def _thumb(m, size=(192, 144)):
    return cv2.resize(m.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0


@pytest.mark.parametrize("colour", [(40, 170, 90), (40, 60, 170), (25, 25, 30)])
def test_pen_strokes_are_not_tissue(colour):
    """Green, blue and black ink drawn across painted tissue are cut out of the mask."""
    img, truth = _painted()
    ink = np.zeros(truth.shape, np.uint8)
    cv2.line(ink, (100, 300), (1400, 900), 1, 40)  # a 20 um wide stroke over the tissue
    img[ink > 0] = colour
    thumb = cv2.resize(img, (192, 144), interpolation=cv2.INTER_AREA)
    mask = tissue_mask(thumb, 4.0, SegmentationParams())
    on_ink = _thumb(ink)
    assert mask[on_ink].mean() < 0.05  # ink removed
    kept = _thumb(truth & ~cv2.dilate(ink, np.ones((81, 81), np.uint8)).astype(bool))
    assert mask[kept].mean() > 0.95  # tissue away from the stroke kept
    unfiltered = tissue_mask(thumb, 4.0, SegmentationParams(pen_filter=False))
    assert unfiltered[on_ink & _thumb(truth)].mean() > 0.5  # without the filter, ink is tissue


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


@pytest.mark.parametrize("bubble_max_um", [8000.0, 300.0])
def test_air_bubble_is_cut_out_of_the_tissue(bubble_max_um):
    """A grey rim (an air bubble's edge, 400 um across) half over tissue, half over glass:
    what it encloses is removed; a bubble larger than bubble_max_um is left alone."""
    img, truth = _painted()
    ring = np.zeros(truth.shape, np.uint8)
    cv2.circle(ring, (700, 560), 400, 1, 40)  # 20 um wide rim
    inside = np.zeros(truth.shape, np.uint8)
    cv2.circle(inside, (700, 560), 380, 1, -1)
    img[ring > 0] = (105, 105, 112)
    thumb = cv2.resize(img, (192, 144), interpolation=cv2.INTER_AREA)
    under = _thumb(inside & truth) & ~_thumb(cv2.dilate(ring, np.ones((41, 41), np.uint8)))
    assert under.sum() > 100  # the bubble covers tissue
    core = cv2.erode(truth.astype(np.uint8), np.ones((25, 25), np.uint8))  # off the edges
    far = _thumb(core & ~cv2.dilate(inside | ring, np.ones((161, 161), np.uint8)))
    params = SegmentationParams(bubble_max_um=bubble_max_um)
    mask = tissue_mask(thumb, 4.0, params)
    assert mask[far].mean() > 0.95  # tissue away from the bubble kept
    if bubble_max_um > 400:
        assert mask[under].mean() < 0.02
    else:
        assert mask[under].mean() > 0.9
    assert tissue_mask(thumb, 4.0, SegmentationParams(bubble_filter=False))[under].mean() > 0.9


def test_straight_edge_line_is_dropped_but_curved_thin_tissue_stays(tmp_path):
    """A saturated 40 um line along the slide's edge (a coverslip edge) is not tissue; a thin
    curved strand of the same width and a round piece of tissue are."""
    img = np.full((3072, 3072, 3), 242, np.uint8)
    cv2.circle(img, (1536, 1700), 700, (220, 140, 190), -1)
    cv2.line(img, (100, 160), (2900, 200), (190, 150, 95), 80)  # 40 um wide, 1.4 mm long
    cv2.ellipse(img, (1536, 1700), (1000, 1000), 0, 200, 340, (215, 130, 185), 80)  # an arc
    path = tmp_path / "edge.tiff"
    write_pyramidal_tiff(path, img, 0.5)
    kept = segment_slide(path, "edge", tmp_path / "a.geojson", tmp_path / "a.png",
                         SegmentationParams())
    assert kept["n_components"] == 2  # the disc and the arc
    polys, _ = read_geojson(tmp_path / "a.geojson")
    assert all(p.exterior[:, 1].min() > 400 for p in polys)  # nothing near the line
    every = segment_slide(path, "edge", tmp_path / "b.geojson", tmp_path / "b.png",
                          SegmentationParams(artefact_width_um=0))
    assert every["n_components"] == 3


def test_artefact_rules_leave_the_real_slide_alone(tmp_path):
    slide = TEST_DATA / "wsi" / "CMU-1-Small-Region.svs"
    runs = [segment_slide(slide, "cmu1", tmp_path / f"{i}.geojson", tmp_path / f"{i}.png", p)
            for i, p in enumerate([SegmentationParams(), SegmentationParams(
                bubble_filter=False, artefact_width_um=0)])]
    assert runs[0] == runs[1]


@pytest.mark.realdata
def test_bubble_filter_leaves_real_tiles_alone():
    from conftest import shared_file

    for path in sorted(shared_file("tiles").glob("*.png")):
        rgb = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        for factor, mpp in ((1.0, 0.5), (0.25, 2.0), (1 / 16, 8.0)):
            small = cv2.resize(rgb, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
            with_filter = tissue_mask(small, mpp, SegmentationParams())
            without = tissue_mask(small, mpp, SegmentationParams(bubble_filter=False))
            assert (with_filter == without).all(), (path.name, mpp)


def test_qc_resolution_fits_the_long_side_and_never_beats_level_0():
    def info(w, h, mpp):
        return SlideInfo("s", "s.svs", mpp, "metadata", (w, h), ((w, h),), (1.0,), "x")

    assert qc_mpp(info(3000, 2000, 0.5)) == pytest.approx(0.5 * 3000 / QC_MAX_PX)  # a biopsy
    assert qc_mpp(info(1000, 800, 0.25)) == 0.25  # smaller than the QC image: level 0
    assert qc_mpp(info(100_000, 80_000, 0.25)) > 8.0  # a resection: the mask thumbnail serves


@pytest.mark.parametrize("ink", [(40, 170, 90), (40, 60, 170), (25, 25, 30)])
def test_qc_outline_stays_visible_over_ink(ink):
    """The outline drawn across a field of green, blue or black ink is yellow (up to
    anti-aliasing) and far from the ink's colour."""
    from histodistill.wsi.geojson import Polygon as Poly
    from histodistill.wsi.segmentation import draw_qc

    field = np.zeros((200, 200, 3), np.uint8)
    field[:] = ink
    square = Poly(np.array([[50, 50], [150, 50], [150, 150], [50, 150]], float))
    line = draw_qc(field, [square], (1.0, 1.0))[100, 44:57].astype(int)  # across an edge
    assert np.abs(line - np.array(OUTLINE_RGB)).max(axis=1).min() < 40
    assert np.abs(line - np.array(ink)).sum(axis=1).max() > 250
