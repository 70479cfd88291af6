"""Slide step speed: segmentation + tiling of a large synthetic slide, and tile read rates.

    python benchmarks/wsi_speed.py --width 100000 --height 80000 --mpp 0.25 --workers 1 2

Writes (streaming, tile by tile - never the whole slide in memory) a pyramidal JPEG TIFF of
``width`` x ``height`` px at ``mpp`` um/px with tissue blobs on glass, then measures, each in a
fresh process so that peak memory is the step's own:

* ``segment_slide`` + ``tile_slide`` (the two rules' package calls): wall time, peak RSS;
* tile reading (OpenSlide ``read_region`` + resize to patch_px, as feature extraction does)
  with 1..N reader processes: tiles/s.

Prints markdown for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import tifffile

REPO = Path(__file__).resolve().parents[1]
TILE = 256
MASK_PX = 64  # level-0 px per pixel of the synthetic tissue map


def tissue_map(width: int, height: int, seed: int) -> np.ndarray:
    """A smooth random tissue map (float 0..1) at 1/MASK_PX of level 0, ~35% tissue."""
    rng = np.random.default_rng(seed)
    w, h = width // MASK_PX + 1, height // MASK_PX + 1
    noise = cv2.resize(rng.random((max(2, h // 40), max(2, w // 40))).astype(np.float32),
                       (w, h), interpolation=cv2.INTER_CUBIC)
    return (noise > np.quantile(noise, 0.65)).astype(np.float32)


def tiles(tmap: np.ndarray, width: int, height: int, factor: int, seed: int):
    """Tiles (row-major) of the pyramid level with downsample ``factor``."""
    rng = np.random.default_rng(seed)
    texture = [np.clip(rng.normal(0, 12, (TILE, TILE, 1)), -40, 40) for _ in range(8)]
    pink = np.array([225, 150, 195], np.float32)
    glass = np.array([242, 242, 240], np.float32)
    lw, lh = -(-width // factor), -(-height // factor)
    span = TILE * factor / MASK_PX  # map pixels per tile
    for ty in range(-(-lh // TILE)):
        for tx in range(-(-lw // TILE)):
            y0, x0 = ty * span, tx * span
            crop = tmap[int(y0):int(np.ceil(y0 + span)) + 1, int(x0):int(np.ceil(x0 + span)) + 1]
            if crop.size == 0 or crop.max() == 0:
                yield np.broadcast_to(glass.astype(np.uint8), (TILE, TILE, 3))
                continue
            m = cv2.resize(crop, (TILE, TILE), interpolation=cv2.INTER_LINEAR)[..., None]
            tile = glass + m * (pink - glass + texture[(tx * 7 + ty * 3) % 8])
            yield np.clip(tile, 0, 255).astype(np.uint8)


def write_slide(path: Path, width: int, height: int, mpp: float, seed: int) -> float:
    t0 = time.perf_counter()
    tmap = tissue_map(width, height, seed)
    with tifffile.TiffWriter(path, bigtiff=True) as tw:
        factor = 1
        while True:
            lw, lh = -(-width // factor), -(-height // factor)
            px_per_cm = 1e4 / (mpp * factor)
            tw.write(tiles(tmap, width, height, factor, seed), shape=(lh, lw, 3), dtype="uint8",
                     photometric="rgb", tile=(TILE, TILE), compression="jpeg",
                     compressionargs={"level": 80}, subfiletype=0 if factor == 1 else 1,
                     resolution=(px_per_cm, px_per_cm), resolutionunit="CENTIMETER",
                     metadata=None)
            if min(lw, lh) // 4 < 1000:
                break
            factor *= 4
    return time.perf_counter() - t0


CHILD = r'''
import json, resource, sys, time
sys.path.insert(0, sys.argv[1] + "/workflow")
task, slide, out = sys.argv[2], sys.argv[3], sys.argv[4]
t0 = time.perf_counter()
if task == "segment_tile":
    from histodistill.wsi.segmentation import SegmentationParams, segment_slide
    from histodistill.wsi.tiling import TilingParams, tile_slide
    t_import = time.perf_counter() - t0; t0 = time.perf_counter()
    segment_slide(slide, "big", out + "/big.geojson", out + "/big.png", SegmentationParams())
    t_seg = time.perf_counter() - t0
    n = tile_slide(slide, "big", out + "/big.geojson", out + "/big.h5",
                   TilingParams(128.0, 256, 0.5))
    result = {"import_s": t_import, "segment_s": t_seg,
              "tile_s": time.perf_counter() - t0 - t_seg, "n_tiles": n}
else:
    import h5py, numpy as np, torch
    from torch.utils.data import DataLoader
    from histodistill.features.tiles import SlideTiles, TileBatches
    from histodistill.wsi.tiling import read_geometry
    torch.set_num_threads(1)
    workers, n_read = int(sys.argv[5]), int(sys.argv[6])
    with h5py.File(out + "/big.h5") as f:
        coords, geom = f["coords"][:], read_geometry(f)
    idx = np.random.default_rng(0).choice(len(coords), min(n_read, len(coords)), replace=False)
    ds = TileBatches([SlideTiles("big", slide, coords[np.sort(idx)], geom)], 64)
    loader = DataLoader(ds, batch_size=None, num_workers=workers)
    t0 = time.perf_counter(); n = 0
    for _, _, batch in loader:
        n += len(batch)
    result = {"tiles": n, "seconds": time.perf_counter() - t0}
result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(result))
'''


def child(*args: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(REPO), *args], capture_output=True,
                          text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=100_000)
    parser.add_argument("--height", type=int, default=80_000)
    parser.add_argument("--mpp", type=float, default=0.25)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--read", type=int, default=2000, help="tiles read per measurement")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="write the slide here and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        slide = args.keep or out / "big.tiff"
        if not slide.exists():
            t_write = write_slide(slide, args.width, args.height, args.mpp, args.seed)
            print(f"wrote {slide.stat().st_size / 1e9:.2f} GB in {t_write:.0f} s")
        seg = child("segment_tile", str(slide), str(out))
        print(f"\nslide {args.width} x {args.height} px at {args.mpp} um/px; "
              f"{seg['n_tiles']} tiles of 128 um (256 px)\n")
        print("| step | wall s | peak RSS MB |\n|---|---|---|")
        print(f"| segment_slide (thumbnail at 8 um/px) | {seg['segment_s']:.2f} | "
              f"{seg['peak_rss_mb']:.0f} |")
        print(f"| tile_slide | {seg['tile_s']:.2f} | (same process) |")
        print(f"| both (imports excluded: {seg['import_s']:.1f} s) | "
              f"{seg['segment_s'] + seg['tile_s']:.2f} | {seg['peak_rss_mb']:.0f} |")
        print("\n| reader processes | tiles/s | per process |\n|---|---|---|")
        for w in args.workers:
            r = child("read", str(slide), str(out), str(w), str(args.read))
            rate = r["tiles"] / r["seconds"]
            print(f"| {w} | {rate:.0f} | {rate / w:.0f} |")


if __name__ == "__main__":
    main()
