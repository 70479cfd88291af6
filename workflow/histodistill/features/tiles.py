"""Tiles of many slides as batches, read and resized in DataLoader worker processes.

One dataset item is one batch (the DataLoader runs with ``batch_size=None``), so a batch
never spans two slides and the main process receives a ready uint8 tensor
(B, 3, patch_px, patch_px) in shared memory, with nothing left to collate. Each worker keeps
the OpenSlide handle of the slide it is on. A slide that cannot be read comes back as its
error message, so that the main process can fail that slide alone
(``wsi.on_slide_error: exclude``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import openslide
import torch
from torch.utils.data import Dataset

from histodistill.errors import SlideError
from histodistill.wsi.slide import rgba_to_rgb
from histodistill.wsi.tiling import TileGeometry


@dataclass(frozen=True)
class SlideTiles:
    slide_id: str
    slide_path: str
    coords: np.ndarray  # (N, 2) level-0 x, y
    geom: TileGeometry
    coord_attrs: dict[str, Any] = field(default_factory=dict)


def read_tile(slide: openslide.OpenSlide, tiles: SlideTiles, i: int) -> np.ndarray:
    """Tile ``i`` as uint8 (3, patch_px, patch_px): read at the pyramid level chosen by the
    tiling step, resized to patch_px (area interpolation when shrinking)."""
    x, y = (int(v) for v in tiles.coords[i])
    g = tiles.geom
    try:
        rgba = np.asarray(slide.read_region((x, y), g.patch_level,
                                            (g.patch_size_at_level, g.patch_size_at_level)))
    except openslide.OpenSlideError as exc:
        raise SlideError(tiles.slide_id, tiles.slide_path,
                         f"reading the tile at level-0 ({x}, {y}) failed: {exc}") from None
    rgb = rgba_to_rgb(rgba)
    if g.patch_size_at_level != g.patch_px:
        interp = cv2.INTER_AREA if g.patch_size_at_level > g.patch_px else cv2.INTER_LINEAR
        rgb = cv2.resize(rgb, (g.patch_px, g.patch_px), interpolation=interp)
    return rgb.transpose(2, 0, 1)


class TileBatches(Dataset[tuple[int, int, "torch.Tensor | str"]]):
    """Item ``i``: (slide index, first row, uint8 tiles or the reason the slide failed)."""

    def __init__(self, slides: list[SlideTiles], batch_size: int) -> None:
        self.slides = slides
        self.batches = [(k, start, min(start + batch_size, len(s.coords)))
                        for k, s in enumerate(slides)
                        for start in range(0, len(s.coords), batch_size)]
        self._open: tuple[int, openslide.OpenSlide] | None = None  # per worker

    def __len__(self) -> int:
        return len(self.batches)

    def _slide(self, k: int) -> openslide.OpenSlide:
        if self._open is None or self._open[0] != k:
            if self._open is not None:
                self._open[1].close()
                self._open = None
            s = self.slides[k]
            try:
                self._open = (k, openslide.OpenSlide(s.slide_path))
            except (openslide.OpenSlideError, OSError) as exc:
                raise SlideError(s.slide_id, s.slide_path, f"cannot open: {exc}") from None
        return self._open[1]

    def __getitem__(self, i: int) -> tuple[int, int, torch.Tensor | str]:
        k, start, stop = self.batches[i]
        tiles = self.slides[k]
        try:
            slide = self._slide(k)
            batch = np.stack([read_tile(slide, tiles, j) for j in range(start, stop)])
        except SlideError as exc:
            return k, start, exc.reason
        return k, start, torch.from_numpy(batch)
