"""Tissue segmentation on a thumbnail: HSV saturation, Otsu, morphology, polygons with holes.

Stained tissue is saturated; glass, dust and slide-edge shadows are not. The threshold on the
blurred saturation channel is Otsu's, lowered to (glass saturation + ``glass_margin``) when that
is smaller - Otsu is pulled up by tissue-rich slides and would cut pale tissue - and never below
``saturation_min``, so that an empty slide does not turn its noise into "tissue". The glass
saturation is the median saturation of the brightest 5% of pixels. Sizes are in micrometres
and converted with the thumbnail's resolution, so the same parameters work at any scan
resolution.

Pen marks: H&E is red-to-purple, so green ink (G > R + 10), blue ink (B > R + 40 and
B > G + 20) and black ink (every channel < 50) are separable by colour; those pixels, opened to
drop isolated ones and dilated by ``pen_margin_um``, are removed from the tissue before the
morphology. Red ink is tissue-coloured and is NOT removed. On the real H&E tiles of
../shared/data/tiles these rules flag < 0.01% of tissue pixels and 45% of the green-pen tile.

Air bubbles under the coverslip show as round regions ringed by a grey, dark edge; the tissue
under them is mounted in air and out of focus. A rim pixel is grey (max - min of RGB below
``bubble_rim_chroma``) and at least ``bubble_rim_contrast`` darker than the glass; H&E tissue
is pink to purple, so tissue, even dark, is not grey. A region enclosed by rims (not reaching
the thumbnail's border), round and convex (solidity >= 0.85, as bubbles are) and of an
equivalent diameter between ``bubble_min_um`` and ``bubble_max_um`` is a bubble: it is removed,
with a margin of about the rim's closing width, before the morphology. On the real CMU-1 slide
and tiles neither artefact rule changes the tissue (tests/unit/test_segmentation.py).

Slide-edge and coverslip-edge lines and scratches survive the opening when they are wider than
it, and long ones pass the area rule. A component whose minimum-area rectangle is at most
``artefact_width_um`` wide is such a straight line and is dropped with the small ones; with the
default area rule it is at least half a millimetre long. Curved or branching thin tissue (fat,
a folded strand) has a wide rectangle and stays. Set the width to 0 for specimens of straight,
isolated strips of tissue. A line that touches tissue joins the tissue's component and stays;
the tile rule limits what it can add.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from histodistill.errors import SlideError
from histodistill.io import atomic_path
from histodistill.wsi.geojson import Polygon, write_geojson
from histodistill.wsi.slide import SlideInfo, open_slide, read_scaled
from histodistill.wsi.status import (
    FAILED,
    OK,
    OnError,
    check_on_error,
    error_card,
    failed_attrs,
    guarded,
)

log = logging.getLogger(__name__)

RIM_CLOSE_UM = 32.0  # gaps in a bubble's rim up to this wide are closed; also its margin
BUBBLE_SOLIDITY = 0.85  # area / convex hull area of a bubble's interior


@dataclass(frozen=True)
class SegmentationParams:
    thumbnail_mpp: float = 8.0  # resolution the mask is computed at
    saturation_min: int = 15  # HSV saturation (0-255) below which nothing is tissue
    glass_margin: int = 15  # tissue is at least this much more saturated than the glass
    median_um: float = 40.0  # median blur before thresholding
    close_um: float = 48.0  # closing fills gaps between tissue fragments
    open_um: float = 24.0  # opening removes specks
    min_component_um2: float = 40_000.0  # tissue pieces smaller than this are dropped
    min_hole_um2: float = 4_000.0  # holes smaller than this are filled
    pen_filter: bool = True  # remove blue, green and black ink (and a margin) from the tissue
    pen_margin_um: float = 32.0  # ink is dilated by this before it is removed
    bubble_filter: bool = True  # remove regions enclosed by grey bubble rims
    bubble_rim_contrast: int = 40  # a rim is this much darker (HSV value) than the glass ...
    bubble_rim_chroma: int = 30  # ... and this grey (max - min of RGB below it)
    bubble_min_um: float = 150.0  # equivalent diameters of the enclosed regions called bubbles
    bubble_max_um: float = 8000.0
    artefact_width_um: float = 80.0  # straight components this thin are lines; 0 = keep

    def __post_init__(self) -> None:
        if not 0 < self.thumbnail_mpp <= 64:
            raise ValueError(f"segmentation.thumbnail_mpp must be in (0, 64], got "
                             f"{self.thumbnail_mpp}")
        if not 0 < self.bubble_min_um <= self.bubble_max_um:
            raise ValueError(f"segmentation: need 0 < bubble_min_um <= bubble_max_um, got "
                             f"{self.bubble_min_um} and {self.bubble_max_um}")


def _odd_kernel(um: float, mpp: float) -> int:
    k = max(1, int(round(um / mpp)))
    return k if k % 2 else k + 1


def tissue_mask(rgb: np.ndarray, mpp: float, params: SegmentationParams) -> np.ndarray:
    """Boolean tissue mask of an RGB thumbnail at ``mpp`` um/px."""
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    sat = cv2.medianBlur(hsv[..., 1], min(_odd_kernel(params.median_um, mpp), 255))
    otsu, _ = cv2.threshold(sat, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    value = hsv[..., 2]
    bright = value >= np.percentile(value, 95)
    glass = float(np.median(sat[bright]))
    threshold = max(params.saturation_min, min(otsu, glass + params.glass_margin))
    mask = (sat > threshold).astype(np.uint8)
    if params.pen_filter:
        mask[pen_mask(rgb, mpp, params.pen_margin_um, value)] = 0
    if params.bubble_filter:
        mask[bubble_mask(rgb, value, mpp, float(np.median(value[bright])), params)] = 0
    for op, um in ((cv2.MORPH_CLOSE, params.close_um), (cv2.MORPH_OPEN, params.open_um)):
        k = _odd_kernel(um, mpp)
        if k > 1:
            mask = cv2.morphologyEx(mask, op, _disk(k))
    return mask.astype(bool)


def _disk(k: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))


def _channel_max(rgb: np.ndarray) -> np.ndarray:
    """max(R, G, B) per pixel (OpenCV's is ~10x faster than numpy's reduction here)."""
    return cv2.max(cv2.max(rgb[..., 0], rgb[..., 1]), rgb[..., 2])


def bubble_mask(rgb: np.ndarray, value: np.ndarray, mpp: float, glass_value: float,
                params: SegmentationParams) -> np.ndarray:
    """Regions of an RGB thumbnail enclosed by grey bubble rims, with a margin; ``value`` is
    its HSV value channel, max(R, G, B)."""
    top = value.astype(np.int16)
    bottom = cv2.min(cv2.min(rgb[..., 0], rgb[..., 1]), rgb[..., 2])
    rim = (top < glass_value - params.bubble_rim_contrast) & (
        top - bottom < params.bubble_rim_chroma)
    k = _odd_kernel(RIM_CLOSE_UM, mpp)
    rim_u8 = cv2.morphologyEx(rim.astype(np.uint8), cv2.MORPH_CLOSE, _disk(k))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(1 - rim_u8, connectivity=4)
    h, w = rim.shape
    x, y, bw, bh, area = (stats[:, i] for i in range(5))
    inside = (x > 0) & (y > 0) & (x + bw < w) & (y + bh < h)
    diameter_um = 2.0 * np.sqrt(area / np.pi) * mpp
    candidates = np.flatnonzero(inside & (diameter_um >= params.bubble_min_um)
                                & (diameter_um <= params.bubble_max_um))
    bubbles = np.zeros(rim.shape, np.uint8)
    for label in candidates:
        box = (slice(y[label], y[label] + bh[label]), slice(x[label], x[label] + bw[label]))
        region = (labels[box] == label).astype(np.uint8)
        contours, _ = cv2.findContours(region, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        hull_area = cv2.contourArea(cv2.convexHull(np.concatenate(contours)))
        if hull_area > 0 and area[label] / hull_area >= BUBBLE_SOLIDITY:
            bubbles[box] |= region
    if bubbles.any():
        bubbles = cv2.dilate(bubbles, _disk(2 * k + 1))
    return bubbles.astype(bool)


def pen_mask(rgb: np.ndarray, mpp: float, margin_um: float, value: np.ndarray | None = None
             ) -> np.ndarray:
    """Pixels of blue, green or black ink (plus a margin) in an RGB thumbnail; ``value``:
    its HSV value channel, max(R, G, B), when the caller has it."""
    r, g, b = (rgb[..., i].astype(np.int16) for i in range(3))
    top = _channel_max(rgb) if value is None else value
    ink = (g > r + 10) | ((b > r + 40) & (b > g + 20)) | (top < 50)
    ink = cv2.morphologyEx(ink.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    k = _odd_kernel(margin_um, mpp)
    if k > 1:
        ink = cv2.dilate(ink, _disk(k))
    return ink.astype(bool)


def mask_to_polygons(mask: np.ndarray, mpp: float, scale: tuple[float, float],
                     params: SegmentationParams) -> list[Polygon]:
    """Outer contours with their holes, small ones and straight lines dropped, in level-0
    pixels.

    ``scale`` = level-0 pixels per mask pixel in (x, y); contour points are pixel centres.
    """
    contours, hierarchy = cv2.findContours(mask.astype(np.uint8), cv2.RETR_CCOMP,
                                           cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return []
    px_area_um2 = mpp * mpp
    sx, sy = scale

    def to_level0(contour: np.ndarray) -> np.ndarray:
        pts = contour.reshape(-1, 2).astype(np.float64) + 0.5
        return pts * np.array([sx, sy])

    polygons: list[Polygon] = []
    for i, (_, _, first_child, parent) in enumerate(hierarchy[0]):
        if parent != -1 or len(contours[i]) < 3:
            continue
        if cv2.contourArea(contours[i]) * px_area_um2 < params.min_component_um2:
            continue
        if (params.artefact_width_um > 0 and
                min(cv2.minAreaRect(contours[i])[1]) * mpp <= params.artefact_width_um):
            continue  # a straight line: slide or coverslip edge, scratch
        holes = []
        child = first_child
        while child != -1:
            if (len(contours[child]) >= 3 and
                    cv2.contourArea(contours[child]) * px_area_um2 >= params.min_hole_um2):
                holes.append(to_level0(contours[child]))
            child = hierarchy[0][child][0]
        polygons.append(Polygon(to_level0(contours[i]), holes))
    return polygons


QC_MAX_PX = 2048
"""Long side of the tissue QC image: the slide is rendered at the finest resolution that fits
(never finer than level 0), from the pyramid, so a small biopsy is as legible as a resection."""
OUTLINE_RGB = (255, 225, 0)  # tissue outline: yellow, on a black halo ...
HOLE_RGB = (0, 235, 255)  # ... holes: cyan; both stay visible over H&E and blue/green/black ink
HALO_RGB = (0, 0, 0)


def draw_qc(rgb: np.ndarray, polygons: list[Polygon], scale: tuple[float, float],
            tiles: np.ndarray | None = None, tile_size: float = 0.0) -> np.ndarray:
    """Image with tissue outlines (yellow) and holes (cyan), each on a black halo so that
    ink of any colour does not hide it, and, optionally, the tile grid."""
    qc = rgb.copy()
    inv = np.array([1.0 / scale[0], 1.0 / scale[1]])
    thickness = max(1, round(max(qc.shape) / 700))
    if tiles is not None and len(tiles):
        for x, y in (tiles * inv).astype(int):
            x1, y1 = int(x + tile_size * inv[0]), int(y + tile_size * inv[1])
            cv2.rectangle(qc, (int(x), int(y)), (x1, y1), (255, 160, 0), 1)
    lines = [((p.exterior * inv).astype(np.int32), OUTLINE_RGB) for p in polygons]
    lines += [((h * inv).astype(np.int32), HOLE_RGB) for p in polygons for h in p.holes]
    for line, _ in lines:
        cv2.polylines(qc, [line], True, HALO_RGB, thickness + 2, cv2.LINE_AA)
    for line, colour in lines:
        cv2.polylines(qc, [line], True, colour, thickness, cv2.LINE_AA)
    return qc


def qc_mpp(info: SlideInfo, max_px: int = QC_MAX_PX) -> float:
    """The resolution of the QC image: the long side fits ``max_px``, never finer than level 0."""
    return max(float(info.mpp), float(info.mpp) * max(info.dimensions) / max_px)


def _qc_thumbnail(thumb: np.ndarray, scale: tuple[float, float], max_px: int = QC_MAX_PX
                  ) -> tuple[np.ndarray, tuple[float, float]]:
    """The image reduced to at most ``max_px`` on its long side for the QC image."""
    factor = max(thumb.shape[:2]) / max_px
    if factor <= 1:
        return thumb, scale
    size = (max(1, round(thumb.shape[1] / factor)), max(1, round(thumb.shape[0] / factor)))
    small = cv2.resize(thumb, size, interpolation=cv2.INTER_AREA)
    return small, (scale[0] * thumb.shape[1] / size[0], scale[1] * thumb.shape[0] / size[1])


def write_png(path: str | Path, rgb: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_PNG_COMPRESSION, 3]):
            raise OSError(f"could not write {path}")


def segment_slide(slide_path: str | Path, slide_id: str, out_geojson: str | Path,
                  out_qc_png: str | Path, params: SegmentationParams,
                  mpp_override: float | None = None, on_error: OnError = "stop"
                  ) -> dict[str, Any]:
    """Segment one slide; write its tissue GeoJSON and QC PNG. Returns a summary.

    Under ``on_error="exclude"`` a slide that cannot be segmented gets explicit failed
    outputs instead of an error (see wsi/status.py)."""

    def failed(exc: SlideError) -> dict[str, Any]:
        write_geojson(out_geojson, [], slide_id, failed_attrs(slide_id, exc.reason))
        write_png(out_qc_png, error_card(slide_id, exc.reason))
        return {"status": FAILED, "reason": exc.reason}

    return guarded(check_on_error(on_error), lambda: _segment(
        slide_path, slide_id, out_geojson, out_qc_png, params, mpp_override), failed)


def _segment(slide_path: str | Path, slide_id: str, out_geojson: str | Path,
             out_qc_png: str | Path, params: SegmentationParams, mpp_override: float | None
             ) -> dict[str, Any]:
    slide, info = open_slide(slide_path, slide_id, mpp_override)
    with slide:
        thumb = read_scaled(slide, info, params.thumbnail_mpp)
        # finer than the mask's thumbnail when the slide is small enough (a biopsy)
        fine = (read_scaled(slide, info, qc_mpp(info))
                if qc_mpp(info) < params.thumbnail_mpp * 0.9 else None)
    scale = (info.dimensions[0] / thumb.shape[1], info.dimensions[1] / thumb.shape[0])
    thumb_mpp = float(info.mpp * np.mean(scale))
    mask = tissue_mask(thumb, thumb_mpp, params)
    polygons = mask_to_polygons(mask, thumb_mpp, scale, params)
    tissue_mm2 = sum(p.area() for p in polygons) * (info.mpp / 1000.0) ** 2
    if not polygons:
        raise SlideError(slide_id, slide_path, "no tissue found (empty or blank slide?); check "
                         "the QC image, or lower segmentation.saturation_min if the stain is "
                         "very pale")
    summary = {"status": OK, "tissue_mm2": round(tissue_mm2, 4), "n_components": len(polygons),
               "n_holes": sum(len(p.holes) for p in polygons), "mpp": info.mpp,
               "thumbnail_mpp": round(thumb_mpp, 4)}
    write_geojson(out_geojson, polygons, slide_id,
                  {**summary, "mpp_source": info.mpp_source, "params": asdict(params)})
    if fine is not None:
        qc, qc_scale = _qc_thumbnail(fine, (info.dimensions[0] / fine.shape[1],
                                            info.dimensions[1] / fine.shape[0]))
    else:
        qc, qc_scale = _qc_thumbnail(thumb, scale)
    write_png(out_qc_png, draw_qc(qc, polygons, qc_scale))
    log.info("%s: %d tissue components, %.3f mm^2", slide_id, len(polygons), tissue_mm2)
    return summary
