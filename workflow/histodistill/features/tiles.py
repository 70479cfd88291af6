"""Tiles of many slides as batches, read and resized in DataLoader worker processes.

One dataset item is one batch (the DataLoader runs with ``batch_size=None``), so a batch
never spans two slides and the main process receives a ready uint8 tensor
(B, 3, patch_px, patch_px) in shared memory, with nothing left to collate. Each worker keeps
the reader of the slide it is on: the stored JPEG tiles themselves for TIFF-based slides where
that is safe (features/jpeg_tiles.py; ``features.tile_reader: auto``), OpenSlide otherwise.
A slide that cannot be read comes back as its error message, so that the main process can
fail that slide alone (``wsi.on_slide_error: exclude``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import openslide
import torch
from torch.utils.data import Dataset

from histodistill.errors import InputError, SlideError
from histodistill.features.jpeg_tiles import (
    FAST,
    OPENSLIDE,
    READERS,
    JpegTileReader,
    jpeg_level,
)
from histodistill.wsi.slide import rgba_to_rgb
from histodistill.wsi.tiling import TileGeometry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SlideTiles:
    slide_id: str
    slide_path: str
    coords: np.ndarray  # (N, 2) level-0 x, y
    geom: TileGeometry
    coord_attrs: dict[str, Any] = field(default_factory=dict)
    reader: str = OPENSLIDE  # FAST: the stored JPEG tiles (see choose_reader)


def _whole_downsample(geom: TileGeometry) -> int | None:
    ds = round(geom.downsample)
    return ds if ds >= 1 and abs(geom.downsample - ds) < 1e-9 else None


def open_source(tiles: SlideTiles) -> openslide.OpenSlide | JpegTileReader:
    """The reader ``tiles.reader`` names, open on the slide."""
    if tiles.reader == FAST:
        with openslide.OpenSlide(tiles.slide_path) as slide:
            vendor = slide.properties.get(openslide.PROPERTY_NAME_VENDOR, "")
            size = slide.level_dimensions[tiles.geom.patch_level]
        level = jpeg_level(tiles.slide_path, vendor, size)
        if level is None:
            raise SlideError(tiles.slide_id, tiles.slide_path, "its JPEG tiles could not be "
                             "located again; set features.tile_reader: openslide")
        return JpegTileReader(level)
    return openslide.OpenSlide(tiles.slide_path)


def read_tile(source: openslide.OpenSlide | JpegTileReader, tiles: SlideTiles, i: int
              ) -> np.ndarray:
    """Tile ``i`` as uint8 (3, patch_px, patch_px): read at the pyramid level chosen by the
    tiling step, resized to patch_px (area interpolation when shrinking). It may be a view of
    the reader's cache, valid until the reader's next read: copy it to keep it."""
    x, y = (int(v) for v in tiles.coords[i])
    g = tiles.geom
    size = g.patch_size_at_level
    try:
        if isinstance(source, JpegTileReader):
            ds = _whole_downsample(g) or 1
            rgb = source.region(x // ds, y // ds, size, size)
        else:
            rgb = rgba_to_rgb(np.asarray(source.read_region((x, y), g.patch_level,
                                                            (size, size))))
    except (openslide.OpenSlideError, OSError, RuntimeError, ValueError) as exc:
        raise SlideError(tiles.slide_id, tiles.slide_path,
                         f"reading the tile at level-0 ({x}, {y}) failed: {exc}") from None
    if g.patch_size_at_level != g.patch_px:
        interp = cv2.INTER_AREA if g.patch_size_at_level > g.patch_px else cv2.INTER_LINEAR
        rgb = cv2.resize(rgb, (g.patch_px, g.patch_px), interpolation=interp)
    return rgb.transpose(2, 0, 1)


def choose_reader(tiles: SlideTiles, requested: str = "auto") -> str:
    """FAST when the stored JPEG tiles can be read for every tile of this slide and give
    OpenSlide's pixels on its first tile; OPENSLIDE otherwise (features/jpeg_tiles.py)."""
    if requested not in READERS:
        raise InputError(f"features.tile_reader must be one of {', '.join(READERS)}; got "
                         f"{requested!r}")
    g = tiles.geom
    ds = _whole_downsample(g)
    if requested == OPENSLIDE or not len(tiles.coords) or ds is None or (tiles.coords % ds).any():
        return OPENSLIDE
    try:
        with openslide.OpenSlide(tiles.slide_path) as slide:
            vendor = slide.properties.get(openslide.PROPERTY_NAME_VENDOR, "")
            level = jpeg_level(tiles.slide_path, vendor, slide.level_dimensions[g.patch_level])
            if level is None:
                return OPENSLIDE
            with JpegTileReader(level) as fast:
                same = np.array_equal(read_tile(fast, tiles, 0), read_tile(slide, tiles, 0))
    except (openslide.OpenSlideError, OSError, SlideError):
        return OPENSLIDE  # the OpenSlide path reports the slide's problem itself
    if not same:
        log.warning("%s: its stored JPEG tiles decode differently from OpenSlide's pixels; "
                    "reading it through OpenSlide", tiles.slide_id)
        return OPENSLIDE
    return FAST


class TileBatches(Dataset[tuple[int, int, "torch.Tensor | str"]]):
    """Item ``i``: (slide index, first row, uint8 tiles or the reason the slide failed)."""

    def __init__(self, slides: list[SlideTiles], batch_size: int) -> None:
        self.slides = slides
        self.batches = [(k, start, min(start + batch_size, len(s.coords)))
                        for k, s in enumerate(slides)
                        for start in range(0, len(s.coords), batch_size)]
        self._open: tuple[int, openslide.OpenSlide | JpegTileReader] | None = None  # per worker

    def __len__(self) -> int:
        return len(self.batches)

    def _slide(self, k: int) -> openslide.OpenSlide | JpegTileReader:
        if self._open is None or self._open[0] != k:
            if self._open is not None:
                self._open[1].close()
                self._open = None
            s = self.slides[k]
            try:
                self._open = (k, open_source(s))
            except (openslide.OpenSlideError, OSError) as exc:
                raise SlideError(s.slide_id, s.slide_path, f"cannot open: {exc}") from None
        return self._open[1]

    def __getitem__(self, i: int) -> tuple[int, int, torch.Tensor | str]:
        k, start, stop = self.batches[i]
        tiles = self.slides[k]
        try:
            slide = self._slide(k)
            px = tiles.geom.patch_px
            batch = np.empty((stop - start, 3, px, px), np.uint8)
            for j in range(start, stop):
                batch[j - start] = read_tile(slide, tiles, j)  # copied before the next read
        except SlideError as exc:
            return k, start, exc.reason
        return k, start, torch.from_numpy(batch)
