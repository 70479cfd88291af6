"""Peak host memory of feature extraction against the number of tiles of a slide (issue 4:
"peak host memory bounded and independent of slide size").

    python benchmarks/extraction_memory.py [--tiles 500 2000 8990] [--workers 2]
        [--model timm:test_resnet] [--batch 64] [--size 80000 64000]

Writes one synthetic pyramidal JPEG slide at 0.25 um/px (benchmarks/wsi_speed.py's writer),
tiles it at ``--patch-um`` (56 um = 224 level-0 px, read without resizing), and for each tile
count runs ``extract_features`` on the first N tiles in a fresh process. Reported: the wall time,
that process's peak RSS (model, batches, pinned buffers, the HDF5 writer) and the largest peak
RSS among its reader processes. The default model is timm's tiny ``test_resnet`` with random
weights, so the run is bound by reading tiles and finishes in minutes on a CPU: what is
measured is what extraction holds besides the model, and a bigger model adds its own constant.

Prints markdown for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import h5py

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))
sys.path.insert(0, str(REPO / "benchmarks"))

from feature_throughput import subset  # noqa: E402
from wsi_speed import write_slide  # noqa: E402

from histodistill.features.extract import SlideJob, extract_features  # noqa: E402
from histodistill.wsi.segmentation import SegmentationParams, segment_slide  # noqa: E402
from histodistill.wsi.tiling import TilingParams, tile_slide  # noqa: E402


def extract_once(job: tuple[str, str, str, str, int, int]) -> tuple[float, float, float, int]:
    """In a fresh process: (wall s, own peak RSS MB, largest reader's peak RSS MB, rows)."""
    model, slide, patches, out, batch, workers = job
    t0 = time.perf_counter()
    extract_features([SlideJob("bench", slide, patches, out)], model, None, batch_size=batch,
                     workers=workers, device="cpu")
    wall = time.perf_counter() - t0
    with h5py.File(out) as f:
        rows = len(f["features"])
    return (wall, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, nargs="+", default=[500, 2000, 8990])
    parser.add_argument("--model", default="timm:test_resnet")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--patch-um", type=float, default=56.0)
    parser.add_argument("--size", type=int, nargs=2, default=[40_000, 32_000],
                        metavar=("WIDTH", "HEIGHT"), help="slide size in level-0 px")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        slide = out / "slide.tiff"
        write_slide(slide, *args.size, 0.25, seed=1)
        segment_slide(slide, "bench", out / "t.geojson", out / "t.png", SegmentationParams())
        total = tile_slide(slide, "bench", out / "t.geojson", out / "all.h5",
                           TilingParams(args.patch_um, 224, 0.5))
        print(f"\nslide {args.size[0]:,} x {args.size[1]:,} px at 0.25 um/px, "
              f"{slide.stat().st_size / 2**20:.0f} "
              f"MB on disk, {total} tiles of {args.patch_um:g} um -> 224 px; model "
              f"{args.model}, batch {args.batch}, {args.workers} reader processes, CPU\n")
        print("| tiles | wall s | tiles/s | extraction process peak RSS MB | "
              "largest reader peak RSS MB |\n|---|---|---|---|---|")
        ctx = mp.get_context("spawn")
        for n in args.tiles:
            n = subset(out / "all.h5", out / f"p{n}.h5", n)
            job = (args.model, str(slide), str(out / f"p{n}.h5"), str(out / f"f{n}.h5"),
                   args.batch, args.workers)
            # not multiprocessing.Pool: its daemonic workers cannot start reader processes
            with ProcessPoolExecutor(1, mp_context=ctx) as pool:
                wall, own, reader, rows = pool.submit(extract_once, job).result()
            assert rows == n, (rows, n)
            print(f"| {n:,} | {wall:.1f} | {n / wall:.0f} | {own:,.0f} | {reader:,.0f} |",
                  flush=True)


if __name__ == "__main__":
    main()
