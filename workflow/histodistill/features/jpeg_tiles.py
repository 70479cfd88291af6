"""Tiles of TIFF-based slides with JPEG tiles, decoded straight from the file's tile bytes.

OpenSlide's ``read_region`` is several times slower than the JPEG decode itself (measured in
benchmarks/RESULTS.md, "Tile reading"). For the formats where it is safe, the extraction
reader instead reads the stored tiles' bytes with ``os.pread`` and decodes them with
libjpeg-turbo (imagecodecs), with the colour handling OpenSlide applies: the TIFF's shared JPEG
tables (tag 347), YCbCr data converted to RGB, and RGB-coded JPEG (Aperio SVS, no JFIF marker)
left as RGB. Decoded stored tiles are kept in a small LRU cache, since neighbouring patches
share them.

It is used only when every condition below holds, checked once per slide; anything else reads
through OpenSlide (the fallback for JPEG 2000, MIRAX, NDPI, DICOM, Philips, ...):

* OpenSlide's vendor is ``aperio`` or ``generic-tiff`` (the formats whose levels are plain
  tiled TIFF pages, tested against OpenSlide here);
* the level read is a tiled page of the same size as OpenSlide's level, JPEG-compressed,
  8-bit, 3 samples, contiguous, photometric RGB or YCbCr, with no extra samples;
* every tile's level coordinates are whole pixels (level 0, or an integer downsample that
  divides the coordinates; OpenSlide paints fractional positions with sub-pixel resampling);
* the first tile of the slide read both ways is identical (a guard against any layout this
  module does not know).

Pixels: the same libjpeg-turbo decode, so tiles are identical to OpenSlide's, including the
white beyond the image edge (OpenSlide returns it transparent; ``rgba_to_rgb`` makes it white)
and missing (zero-byte) stored tiles.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)

FAST, OPENSLIDE = "tiff-jpeg", "openslide"
READERS = ("auto", OPENSLIDE)
VENDORS = ("aperio", "generic-tiff")
CACHE_TILES = 64


@dataclass(frozen=True)
class JpegLevel:
    """Where one pyramid level's JPEG tiles lie in the file, and how to decode them."""

    path: str
    width: int
    height: int
    tile_w: int
    tile_h: int
    offsets: tuple[int, ...]
    counts: tuple[int, ...]
    tables: bytes | None
    colorspace: int | None
    outcolorspace: int

    @property
    def tiles_across(self) -> int:
        return -(-self.width // self.tile_w)


def jpeg_level(path: str, vendor: str, level_size: tuple[int, int]) -> JpegLevel | None:
    """The stored JPEG tiles of the TIFF page that is OpenSlide's level of ``level_size``
    (width, height), or None when the fast path does not apply (module docstring)."""
    import tifffile

    if vendor not in VENDORS:
        return None
    try:
        with tifffile.TiffFile(path) as tif:
            pages = [p for p in tif.pages if p.is_tiled
                     and (p.imagewidth, p.imagelength) == tuple(level_size)]
            if len(pages) != 1:
                return None
            page = pages[0]
            if (page.compression != 7 or page.bitspersample != 8 or page.samplesperpixel != 3
                    or page.planarconfig != 1 or page.extrasamples
                    or page.photometric not in (2, 6) or page.imagedepth != 1):
                return None
            colorspace, outcolorspace = decode_colorspaces(int(page.photometric),
                                                           bool(page.is_jfif))
            return JpegLevel(path, page.imagewidth, page.imagelength, page.tilewidth,
                             page.tilelength, tuple(int(v) for v in page.dataoffsets),
                             tuple(int(v) for v in page.databytecounts), page.jpegtables,
                             colorspace, outcolorspace)
    except (tifffile.TiffFileError, OSError, ValueError, KeyError):
        return None


def decode_colorspaces(photometric: int, jfif: bool) -> tuple[int | None, int]:
    """(JPEG colour space, output colour space) for imagecodecs' decoder, in TIFF photometric
    codes: YCbCr data (6) is converted to RGB; RGB data (2) stays RGB, and when the stream has
    no JFIF marker (Aperio SVS) the decoder must be told it is RGB, or it would take it for
    YCbCr (libjpeg's default for 3 components) - the rule OpenSlide and tifffile follow."""
    if photometric == 6:
        return None, 2
    return (None if jfif else 2), 2


class JpegTileReader:
    """Regions of one level from its stored JPEG tiles (see the module docstring)."""

    def __init__(self, level: JpegLevel, cache_tiles: int = CACHE_TILES) -> None:
        self.level = level
        self._fd = os.open(level.path, os.O_RDONLY)
        self._cache: OrderedDict[int, np.ndarray | None] = OrderedDict()
        self._cache_tiles = cache_tiles
        self._free: list[np.ndarray] = []

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> JpegTileReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def stored_tile(self, index: int) -> np.ndarray | None:
        """Stored tile ``index`` decoded (tile_h, tile_w, 3), or None for a missing tile. The
        array belongs to the cache and is overwritten once evicted: copy what you keep."""
        import imagecodecs

        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        lv = self.level
        tile = None
        if lv.counts[index] > 0:
            data = os.pread(self._fd, lv.counts[index], lv.offsets[index])
            if len(data) != lv.counts[index]:
                raise OSError(f"{lv.path}: tile {index} is cut short (file truncated?)")
            # decode into the buffer of the tile evicted last: a fresh 200 kB array per
            # tile would be a new memory mapping (and its page faults) every time
            buffer = self._free.pop() if self._free else None
            tile = imagecodecs.jpeg8_decode(data, tables=lv.tables, colorspace=lv.colorspace,
                                            outcolorspace=lv.outcolorspace, out=buffer)
        self._cache[index] = tile
        if len(self._cache) > self._cache_tiles:
            _, old = self._cache.popitem(last=False)
            if old is not None and old.shape == (lv.tile_h, lv.tile_w, 3):
                self._free.append(old)
        return tile

    def region(self, x: int, y: int, w: int, h: int) -> np.ndarray:
        """(h, w, 3) uint8 RGB at level coordinates (x, y); white beyond the image and where
        a stored tile is missing, as OpenSlide's transparent pixels put on white. A region
        that is one whole stored tile is the cache's array itself, valid until the next read:
        copy what you keep."""
        lv = self.level
        if (w == lv.tile_w and h == lv.tile_h and x % w == 0 and y % h == 0
                and x + w <= lv.width and y + h <= lv.height):  # one whole stored tile
            tile = self.stored_tile(y // h * lv.tiles_across + x // w)
            if tile is not None:
                return tile
        out = np.full((h, w, 3), 255, np.uint8)
        x1, y1 = min(x + w, lv.width), min(y + h, lv.height)
        if x1 <= x or y1 <= y:
            return out
        for ty in range(y // lv.tile_h, (y1 - 1) // lv.tile_h + 1):
            for tx in range(x // lv.tile_w, (x1 - 1) // lv.tile_w + 1):
                tile = self.stored_tile(ty * lv.tiles_across + tx)
                if tile is None:
                    continue
                ox, oy = tx * lv.tile_w, ty * lv.tile_h
                sx0, sx1 = max(x, ox), min(x1, ox + lv.tile_w)
                sy0, sy1 = max(y, oy), min(y1, oy + lv.tile_h)
                out[sy0 - y:sy1 - y, sx0 - x:sx1 - x] = tile[sy0 - oy:sy1 - oy,
                                                               sx0 - ox:sx1 - ox, :3]
        return out
