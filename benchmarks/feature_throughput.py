"""Feature extraction throughput: end to end (slide file -> h5) beside the model alone.

    python benchmarks/feature_throughput.py --tiles 20000 --batch 512 --workers 14 --compile
    python benchmarks/feature_throughput.py --tiles 256 --batch 32 --workers 1   # a CPU

Writes a synthetic pyramidal JPEG slide (benchmarks/wsi_speed.py's writer) at 0.25 um/px
("40x"), tiles it at 112 um -> 224 px (0.5 um/px: each tile is read as 448 px from level 0
and resized, as for a 20x model on a 40x scan), then for each model (random weights:
throughput does not depend on them):

* model only: uint8 tiles already on the device, through ``features.extract.Runner`` (the
  same normalisation, precision, channels-last and compile settings extraction uses);
* end to end: ``extract_features`` on ``--tiles`` tiles of the slide - worker processes read
  and resize, pinned-memory copies, the model, HDF5 writes - with model build and
  compile time reported apart, and the steady rate excluding them.

Prints markdown for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import h5py
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))
sys.path.insert(0, str(REPO / "benchmarks"))

from wsi_speed import write_slide  # noqa: E402

from histodistill.device import resolve_device  # noqa: E402
from histodistill.features.extract import Runner, SlideJob, extract_features  # noqa: E402
from histodistill.features.factory import build_extractor  # noqa: E402
from histodistill.wsi.segmentation import SegmentationParams, segment_slide  # noqa: E402
from histodistill.wsi.tiling import TilingParams, tile_slide  # noqa: E402

MODELS = {"resnet50_trunc": "ResNet50-trunc (1024-d)",
          "timm:vit_base_patch16_224": "ViT-B/16",
          "uni": "ViT-L/16 (UNI's architecture)"}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def model_only(name: str, device: torch.device, batch: int, n_batches: int, precision: str,
               compile_model: bool) -> float:
    ext = build_extractor(name, None)
    runner = Runner(ext, device, precision, compile_model, batch)
    tiles = torch.randint(0, 256, (batch, 3, 224, 224), dtype=torch.uint8, device=device)
    with torch.inference_mode():
        for _ in range(3):  # warm-up (and compilation)
            runner(tiles)
        _sync(device)
        t0 = time.perf_counter()
        for _ in range(n_batches):
            out = runner(tiles)
        out.float().cpu()
        _sync(device)
    return batch * n_batches / (time.perf_counter() - t0)


def subset(patches: Path, out: Path, n: int) -> int:
    with h5py.File(patches) as src, h5py.File(out, "w") as dst:
        coords = src["coords"][:n]
        dst.create_dataset("coords", data=coords).attrs.update(dict(src["coords"].attrs))
        dst.attrs.update(dict(src.attrs))
    return len(coords)


def end_to_end(name: str, slide: Path, patches: Path, out: Path, device: str, batch: int,
               workers: int, precision: str, compile_model: bool) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = extract_features([SlideJob("bench", str(slide), str(patches), str(out))], name, None,
                         batch_size=batch, workers=workers, device=device, precision=precision,
                         compile_model=compile_model)["bench"]
    return time.perf_counter() - t0, n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--tiles", type=int, default=2000, help="tiles per end-to-end run")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="bf16")
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--model-batches", type=int, default=20)
    parser.add_argument("--slide", type=Path, help="an existing slide to use instead")
    args = parser.parse_args()
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        slide = args.slide or out / "slide.tiff"
        if not slide.exists():
            write_slide(slide, 40_000, 32_000, 0.25, seed=1)
        segment_slide(slide, "bench", out / "t.geojson", out / "t.png", SegmentationParams())
        total = tile_slide(slide, "bench", out / "t.geojson", out / "all.h5",
                           TilingParams(112.0, 224, 0.5))
        n = subset(out / "all.h5", out / "p.h5", args.tiles)
        one = out / "one.h5"  # one batch: the load + compile share of an end-to-end run
        subset(out / "all.h5", one, args.batch)
        gpu = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
        print(f"\n{gpu}; {torch.get_num_threads()} CPU threads; slide {total} tiles of 224 px, "
              f"{n} per end-to-end run; batch {args.batch}, {args.workers} reader processes, "
              f"precision {args.precision if device.type == 'cuda' else 'fp32'}, "
              f"compile {args.compile}\n")
        print("| model | model only, patches/s | end to end, patches/s (steady) | e2e / model "
              "| load + compile s |\n|---|---|---|---|---|")
        for name in args.models:
            rate = model_only(name, device, args.batch, args.model_batches, args.precision,
                              args.compile)
            t_one, _ = end_to_end(name, slide, one, out / "f1.h5", args.device,
                                     args.batch, args.workers, args.precision, args.compile)
            wall, tiles = end_to_end(name, slide, out / "p.h5", out / "f.h5", args.device,
                                        args.batch, args.workers, args.precision,
                                        args.compile)
            steady = (tiles - args.batch) / max(wall - t_one, 1e-9)
            print(f"| {MODELS.get(name, name)} | {rate:,.0f} | {steady:,.0f} "
                  f"(wall {wall:.1f} s for {tiles}) | {steady / rate:.0%} | {t_one:.1f} |",
                  flush=True)


if __name__ == "__main__":
    main()
