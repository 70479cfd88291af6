"""Tile coordinates at a physical patch size, stored in a CLAM/TRIDENT-style h5.

A tile is ``patch_um`` micrometres wide and is fed to the encoder as ``patch_px`` pixels, i.e.
at ``patch_um / patch_px`` um/px. It is read from the coarsest pyramid level at or above that
resolution and resized. Coordinates are the level-0 top-left corners of a non-overlapping grid
anchored at (0, 0); a tile is kept when its tissue fraction >= ``min_tissue_fraction``.

* **Edge tiles** (``pad_edges``, default on): the grid covers the whole slide, so the partial
  tiles of the right and bottom strips are kept when they pass the tissue threshold (the part
  outside the slide counts as no tissue) and are read padded with white, as OpenSlide returns
  the area beyond the slide transparent and :func:`~histodistill.wsi.slide.rgba_to_rgb` puts it
  on white. Off, only whole tiles are kept.
* **Coarse scans**: a tile read at a finer resolution than the scan's is upsampled - pixels
  interpolated, detail not resolved. Above ``UPSAMPLE_WARN`` (1.1x) the slide's log warns and
  the h5 records ``upsample_factor``; above ``max_upsample`` (default 2x: a 10x scan for 20x
  tiles) the slide is refused (a per-slide error, which ``on_slide_error: exclude`` excludes)
  unless the user raises ``max_upsample``.

h5 layout (``patches/{slide}.h5``)::

    coords           (N, 2) int64, level-0 (x, y) of each tile's top-left corner
    tissue_fraction  (N,) float32
    coords.attrs     patch_size (= patch_px), patch_size_level0, patch_level, downsample,
                     level0_mpp, target_mpp, patch_size_um, level_dim, name, ...
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from histodistill.errors import InputError, SlideError
from histodistill.io import atomic_path
from histodistill.units import Level0Px, Microns
from histodistill.wsi.geojson import Polygon, rasterize, read_geojson
from histodistill.wsi.segmentation import SegmentationParams, segment_slide, write_png
from histodistill.wsi.slide import SlideInfo, open_slide
from histodistill.wsi.status import (
    OK,
    OnError,
    check_on_error,
    failed_attrs,
    guarded,
    upstream_failure,
)

log = logging.getLogger(__name__)

MASK_PX_PER_TILE = 16  # tissue fraction is measured on a 16 x 16 raster of each tile
UPSAMPLE_WARN = 1.1  # a scan this much coarser than the tiles is warned about


@dataclass(frozen=True)
class TilingParams:
    patch_um: float = 112.0
    patch_px: int = 112
    min_tissue_fraction: float = 0.5
    pad_edges: bool = True
    max_upsample: float = 2.0

    def __post_init__(self) -> None:
        if self.patch_um <= 0 or self.patch_px <= 0:
            raise ValueError("tiling: patch_um and patch_px must be positive")
        if not 0.0 <= self.min_tissue_fraction <= 1.0:
            raise ValueError("tiling: min_tissue_fraction must be in [0, 1]")
        if self.max_upsample < 1.0:
            raise ValueError("tiling: max_upsample must be >= 1 (1 = never upsample)")

    @property
    def target_mpp(self) -> float:
        return self.patch_um / self.patch_px


@dataclass(frozen=True)
class TileGeometry:
    """Everything needed to re-read a tile from the slide."""

    patch_size_level0: Level0Px
    patch_level: int
    downsample: float  # of patch_level
    patch_size_at_level: int
    patch_px: int
    patch_um: Microns
    level0_mpp: float
    target_mpp: float

    @classmethod
    def for_slide(cls, info: SlideInfo, params: TilingParams) -> TileGeometry:
        size0 = int(round(params.patch_um / info.mpp))
        if size0 < 1:
            raise SlideError(info.slide_id, info.path, f"patch of {params.patch_um} um is "
                             f"smaller than one pixel at {info.mpp} um/px")
        level = info.best_level(params.target_mpp / info.mpp)
        ds = info.level_downsamples[level]
        return cls(Level0Px(size0), level, ds, max(1, int(round(size0 / ds))), params.patch_px,
                   Microns(params.patch_um), float(info.mpp), params.target_mpp)


def grid_tissue_fraction(mask: np.ndarray, nx: int, ny: int, k: int = MASK_PX_PER_TILE
                         ) -> np.ndarray:
    """(ny, nx) tissue fraction of each grid cell of a mask drawn at k mask px per tile; cells
    that reach past the mask count the part outside as no tissue."""
    block = np.zeros((ny * k, nx * k), np.float32)
    inside = mask[: ny * k, : nx * k]
    block[: inside.shape[0], : inside.shape[1]] = inside
    return block.reshape(ny, k, nx, k).mean(axis=(1, 3))


def tile_coords(polygons_mask: np.ndarray, dims: tuple[int, int], size0: int,
                min_fraction: float, pad_edges: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Level-0 top-left coords (N, 2) and tissue fractions (N,) of kept tiles, row-major;
    with ``pad_edges`` the partial tiles at the right and bottom edges are candidates too."""
    if pad_edges:
        nx, ny = -(-dims[0] // size0), -(-dims[1] // size0)
    else:
        nx, ny = dims[0] // size0, dims[1] // size0
    frac = grid_tissue_fraction(polygons_mask, nx, ny)
    keep = frac >= min_fraction if min_fraction > 0 else frac > 0
    iy, ix = np.nonzero(keep)
    coords = np.stack([ix, iy], axis=1).astype(np.int64) * size0
    return coords, frac[iy, ix].astype(np.float32)


def tile_slide(slide_path: str | Path, slide_id: str, tissue_geojson: str | Path,
               out_h5: str | Path, params: TilingParams, mpp_override: float | None = None,
               on_error: OnError = "stop", tissue_qc_png: str | Path | None = None,
               out_qc_png: str | Path | None = None) -> int:
    """Write the tile coordinates of one slide; returns the number of tiles.

    With ``tissue_qc_png`` and ``out_qc_png``, the tile grid is drawn over segmentation's QC
    image (thumbnail + tissue outline) into ``out_qc_png``.

    A slide whose segmentation failed (under ``exclude``), or that fails here under
    ``on_error="exclude"``, gets a zero-row h5 with ``status = "failed"`` and the reason (and
    its QC card as the tile QC image)."""
    n = _tile_or_exclude(slide_path, slide_id, tissue_geojson, out_h5, params, mpp_override,
                         on_error)
    if tissue_qc_png is not None and out_qc_png is not None:
        draw_tile_grid(tissue_qc_png, out_h5, out_qc_png)
    return n


def segment_and_tile(slide_path: str | Path, slide_id: str, out_geojson: str | Path,
                     out_tissue_png: str | Path, out_h5: str | Path, out_tiles_png: str | Path,
                     segmentation: SegmentationParams, tiling: TilingParams,
                     mpp_override: float | None = None, on_error: OnError = "stop") -> int:
    """Segment one slide, then tile it (one job per slide, as CLAM's create_patches): the
    tissue GeoJSON and QC image, the tile h5 and the tile-grid QC image. Returns the number of
    tiles (0 for a slide excluded under ``on_error="exclude"``)."""
    segment_slide(slide_path, slide_id, out_geojson, out_tissue_png, segmentation,
                  mpp_override=mpp_override, on_error=on_error)
    return tile_slide(slide_path, slide_id, out_geojson, out_h5, tiling, mpp_override,
                      on_error, tissue_qc_png=out_tissue_png, out_qc_png=out_tiles_png)


def draw_tile_grid(tissue_qc_png: str | Path, patches_h5: str | Path,
                   out_png: str | Path) -> None:
    """Tiles (orange squares) over the tissue QC image; a failed slide's card is copied."""
    import cv2

    qc = cv2.imread(str(tissue_qc_png), cv2.IMREAD_COLOR)
    if qc is None:
        raise InputError(f"cannot read the tissue QC image {tissue_qc_png}")
    with h5py.File(patches_h5, "r") as f:
        coords = f["coords"][:]
        attrs = dict(f["coords"].attrs)
    if len(coords):
        width0, height0 = (int(v) for v in attrs["level0_dim"])
        sx, sy = qc.shape[1] / width0, qc.shape[0] / height0
        size = int(attrs["patch_size_level0"])
        for x, y in coords:
            cv2.rectangle(qc, (int(x * sx), int(y * sy)),
                          (int((x + size) * sx), int((y + size) * sy)), (0, 140, 255), 1)
    write_png(out_png, cv2.cvtColor(qc, cv2.COLOR_BGR2RGB))


def _tile_or_exclude(slide_path: str | Path, slide_id: str, tissue_geojson: str | Path,
                     out_h5: str | Path, params: TilingParams, mpp_override: float | None,
                     on_error: OnError) -> int:
    polygons, props = read_geojson(tissue_geojson)
    if props.get("slide") not in (None, slide_id):
        raise InputError(f"{tissue_geojson} belongs to slide {props.get('slide')!r}, not "
                         f"{slide_id!r}")

    def failed(exc: SlideError) -> int:
        write_failed_h5(out_h5, slide_id, exc.reason)
        return 0

    return guarded(check_on_error(on_error), lambda: _tile(
        slide_path, slide_id, polygons, out_h5, params, mpp_override), failed,
        upstream_failure(slide_id, slide_path, props.get("status"), props.get("reason")))


def _tile(slide_path: str | Path, slide_id: str, polygons: list[Polygon],
          out_h5: str | Path, params: TilingParams, mpp_override: float | None) -> int:
    slide, info = open_slide(slide_path, slide_id, mpp_override)
    slide.close()
    geom = TileGeometry.for_slide(info, params)
    upsample = check_upsample(info, params)
    scale = geom.patch_size_level0 / MASK_PX_PER_TILE
    shape = (int(np.ceil(info.dimensions[1] / scale)), int(np.ceil(info.dimensions[0] / scale)))
    mask = rasterize(polygons, shape, scale)
    coords, fraction = tile_coords(mask, info.dimensions, geom.patch_size_level0,
                                   params.min_tissue_fraction, params.pad_edges)
    if len(coords) == 0:
        raise SlideError(slide_id, slide_path, f"no tile of {params.patch_um} um has a tissue "
                         f"fraction >= {params.min_tissue_fraction}; check the tissue QC image "
                         "or lower tiling.min_tissue_fraction")
    write_coords_h5(out_h5, coords, fraction, info, geom, params, upsample)
    log.info("%s: %d tiles of %d level-0 px (read at level %d, downsample %.3g)", slide_id,
             len(coords), geom.patch_size_level0, geom.patch_level, geom.downsample)
    return len(coords)


def check_upsample(info: SlideInfo, params: TilingParams) -> float:
    """How many times a tile is upsampled from the scan (1 when it is not); warns above
    ``UPSAMPLE_WARN`` and refuses the slide above ``params.max_upsample``."""
    factor = max(1.0, float(info.mpp) / params.target_mpp)
    if factor > params.max_upsample * (1 + 1e-6):
        raise SlideError(info.slide_id, info.path, (
            f"scanned at {info.mpp:g} um/px ({info.mpp_source}), {factor:.2g}x coarser than the "
            f"tiles' {params.target_mpp:g} um/px: every tile would be upsampled {factor:.2g}x, "
            "interpolated rather than resolved. Check the mpp (the sheet's mpp column wins), "
            f"use coarser tiles, or accept it with wsi.tiling.max_upsample: {factor:.3g}"))
    if factor > UPSAMPLE_WARN:
        log.warning("%s: scanned at %g um/px, %.2gx coarser than the tiles' %g um/px; tiles "
                    "are upsampled %.2gx (wsi.tiling.max_upsample: %g)", info.slide_id,
                    info.mpp, factor, params.target_mpp, factor, params.max_upsample)
    return factor


def write_failed_h5(path: str | Path, slide_id: str, reason: str,
                    datasets: dict[str, tuple[int, ...]] | None = None,
                    attrs: dict[str, Any] | None = None) -> None:
    """A zero-row patches (or features) file that says the slide failed, and why."""
    shapes = {"coords": (0, 2), "tissue_fraction": (0,)} if datasets is None else datasets
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        for name, shape in shapes.items():
            f.create_dataset(name, shape=shape, dtype="int64" if name == "coords" else "float32")
        f.attrs.update({**(attrs or {}), **failed_attrs(slide_id, reason)})


def coords_attrs(info: SlideInfo, geom: TileGeometry) -> dict[str, Any]:
    """Attributes on the ``coords`` dataset (CLAM and TRIDENT names, plus ours)."""
    return {
        "name": info.slide_id,
        "patch_size": geom.patch_px,
        "patch_size_level0": geom.patch_size_level0,
        "patch_level": geom.patch_level,
        "downsample": [geom.downsample, geom.downsample],
        "patch_size_at_level": geom.patch_size_at_level,
        "level_dim": list(info.level_dimensions[geom.patch_level]),
        "level0_dim": list(info.dimensions),
        "level0_mpp": geom.level0_mpp,
        "target_mpp": geom.target_mpp,
        "patch_size_um": float(geom.patch_um),
        "overlap": 0,
    }


def write_coords_h5(path: str | Path, coords: np.ndarray, fraction: np.ndarray,
                    info: SlideInfo, geom: TileGeometry, params: TilingParams,
                    upsample_factor: float = 1.0) -> None:
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        ds = f.create_dataset("coords", data=coords)
        ds.attrs.update(coords_attrs(info, geom))
        f.create_dataset("tissue_fraction", data=fraction)
        f.attrs.update({"slide_id": info.slide_id, "slide_path": info.path, "status": OK,
                        "mpp_source": info.mpp_source, "upsample_factor": upsample_factor,
                        **{f"tiling_{k}": v for k, v in asdict(params).items()}})


def read_geometry(h5: h5py.File) -> TileGeometry:
    """The tile geometry stored with the coordinates (used to re-read tiles)."""
    a = h5["coords"].attrs
    return TileGeometry(Level0Px(int(a["patch_size_level0"])), int(a["patch_level"]),
                        float(np.asarray(a["downsample"]).ravel()[0]),
                        int(a["patch_size_at_level"]), int(a["patch_size"]),
                        Microns(float(a["patch_size_um"])), float(a["level0_mpp"]),
                        float(a["target_mpp"]))
