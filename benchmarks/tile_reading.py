"""Tile reading per core: OpenSlide, the stored-JPEG reader, and the JPEG decode alone.

    python benchmarks/tile_reading.py [--size 8192] [--tiles 600]

Writes a synthetic 40x slide (``size`` x ``size`` px at 0.25 um/px, painted H&E-like tissue
by the demo generator) as a JPEG pyramid (256 px tiles, quality 85, YCbCr, as
write_pyramidal_tiff writes), then, on the same tiles in one run, on one core:

* ``openslide``: today's path, ``read_region`` + RGBA->RGB + resize (features/tiles.py);
* ``tiff-jpeg``: the extraction reader's fast path (features/jpeg_tiles.py) + the same resize;
* ``decode only``: the JPEG decode (libjpeg-turbo via imagecodecs) of every stored tile each
  output tile touches, with the bytes already in memory, into one reused buffer - no cache,
  no copy, no resize: the limit for a CPU decoder that reads each tile's stored tiles;

for two tilings: 20x tiles from the 40x scan (448 level-0 px resized to 224) and tiles at the
stored resolution (256 px on the stored grid). Then the real DataLoader path (TileBatches, one
batch = 64 tiles) with 1 and 2 reader processes, both readers. Prints markdown.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))

from histodistill.demo.tissue import paint_slide  # noqa: E402
from histodistill.features.jpeg_tiles import FAST, OPENSLIDE, JpegTileReader  # noqa: E402
from histodistill.features.tiles import (  # noqa: E402
    SlideTiles,
    TileBatches,
    choose_reader,
    open_source,
    read_tile,
)
from histodistill.units import Level0Px, Microns  # noqa: E402
from histodistill.wsi.tiling import TileGeometry  # noqa: E402
from histodistill.wsi.write import write_pyramidal_tiff  # noqa: E402


def tilings(size: int, n: int, rng: np.random.Generator) -> dict[str, SlideTiles]:
    out = {}
    for name, size0, px in (("20x from 40x (448 -> 224 px)", 448, 224),
                            ("stored resolution (256 px)", 256, 256)):
        grid = np.array([[x, y] for y in range(0, size - size0 + 1, size0)
                         for x in range(0, size - size0 + 1, size0)], np.int64)
        pick = np.sort(rng.choice(len(grid), size=min(n, len(grid)), replace=False))
        geom = TileGeometry(Level0Px(size0), 0, 1.0, size0, px, Microns(size0 * 0.25), 0.25,
                            size0 * 0.25 / px)
        out[name] = SlideTiles("bench", "", grid[pick], geom)
    return out


def interleaved_rates(fns: list, n: int, rounds: int = 5) -> list[float]:
    """Tiles/s of each function: the best of ``rounds``, the functions taking turns within
    each round so that a change in the machine's load touches all of them alike."""
    best = [np.inf] * len(fns)
    for _ in range(rounds):
        for k, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            best[k] = min(best[k], time.perf_counter() - t0)
    return [n / b for b in best]


def decode_only(path: str, tiles: SlideTiles) -> tuple[callable, int]:
    """A function decoding every stored tile each output tile touches (bytes in memory)."""
    import imagecodecs

    with open_source(replace(tiles, slide_path=path, reader=FAST)) as reader:
        level = reader.level
    with open(path, "rb") as fh:
        blob = fh.read()
    data = []
    size = tiles.geom.patch_size_at_level
    for x, y in tiles.coords:
        for ty in range(y // level.tile_h, (y + size - 1) // level.tile_h + 1):
            for tx in range(x // level.tile_w, (x + size - 1) // level.tile_w + 1):
                i = ty * level.tiles_across + tx
                data.append(blob[level.offsets[i]:level.offsets[i] + level.counts[i]])

    buffer = np.empty((level.tile_h, level.tile_w, 3), np.uint8)

    def run() -> None:
        for d in data:
            imagecodecs.jpeg8_decode(d, tables=level.tables, colorspace=level.colorspace,
                                     outcolorspace=level.outcolorspace, out=buffer)
    return run, len(data)


def loader_rate(tiles: SlideTiles, workers: int) -> float:
    from torch.utils.data import DataLoader

    loader = DataLoader(TileBatches([tiles], 64), batch_size=None, num_workers=workers,
                        prefetch_factor=4 if workers else None)
    t0 = time.perf_counter()
    n = sum(len(batch) for _, _, batch in loader)
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=8192, help="slide side, level-0 px")
    ap.add_argument("--tiles", type=int, default=600)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "slide.tiff")
        image, _ = paint_slide(rng, (args.size, args.size), 0.25,
                               {"pallor": 0.0, "nuclear_density": 0.0})
        write_pyramidal_tiff(path, image, 0.25, tile=256, quality=85)
        del image
        print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
              f"slide {args.size} x {args.size} px at 0.25 um/px, "
              f"{os.path.getsize(path) / 1e6:.0f} MB; one core unless stated\n")
        print("| tiles | openslide (tiles/s) | tiff-jpeg (tiles/s) | decode only (tiles/s; "
              "stored tiles per tile) | tiff-jpeg / decode only | tiff-jpeg / openslide |")
        print("|---|---|---|---|---|---|")
        runs = {}
        for name, tiles in tilings(args.size, args.tiles, rng).items():
            tiles = replace(tiles, slide_path=path)
            assert choose_reader(tiles) == FAST
            n = len(tiles.coords)
            import openslide

            # each reader opened once, as per slide in extraction (not timed: a slide's
            # thousands of tiles share it); repeats start from the first tile again
            slide = openslide.OpenSlide(path)
            reader = open_source(replace(tiles, reader=FAST))
            assert isinstance(reader, JpegTileReader)

            def read_all(source, tiles=tiles) -> None:
                for i in range(len(tiles.coords)):
                    read_tile(source, tiles, i)

            decode, n_stored = decode_only(path, tiles)
            r_slow, r_fast, r_dec = interleaved_rates(
                [partial(read_all, slide), partial(read_all, reader), decode], n)
            slide.close()
            reader.close()
            print(f"| {name} | {r_slow:.0f} | {r_fast:.0f} | {r_dec:.0f} "
                  f"({n_stored / n:.2f}) | {r_fast / r_dec:.2f} | {r_fast / r_slow:.2f} |")
            runs[name] = tiles
        print("\nDataLoader path (TileBatches, 64-tile batches), tiles/s:\n")
        print("| tiles | reader | 1 process | 2 processes |\n|---|---|---|---|")
        for name, tiles in runs.items():
            for reader in (OPENSLIDE, FAST):
                t = replace(tiles, reader=reader)
                print(f"| {name} | {reader} | {loader_rate(t, 1):.0f} | "
                      f"{loader_rate(t, 2):.0f} |")


if __name__ == "__main__":
    main()
