"""Agreement of our tissue masks with established recipes, on real H&E.

    python benchmarks/segmentation_agreement.py [--shared ../shared/data]

Established recipes, re-implemented from their published descriptions:

* **CLAM** (Lu et al. 2021, ``segmentTissue``): median blur of the HSV saturation channel,
  Otsu threshold, morphological closing; the default recipe of the field's MIL pipelines.
* **grey Otsu** (histolab's ``TissueMask`` family): Otsu threshold on the grey level, tissue
  darker than the threshold.

Inputs: the real Aperio slide CMU-1-Small-Region (whole-slide thumbnail at 8 um/px) and the
real H&E tiles of ../shared/data/tiles (each tile: tissue fraction, and tissue/background
classification at a 10% tissue-fraction cut). Prints markdown tables: Dice and IoU of the
masks, and the per-tile tissue fractions.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))

from histodistill.wsi.segmentation import SegmentationParams, tissue_mask  # noqa: E402
from histodistill.wsi.slide import open_slide, read_scaled  # noqa: E402

CMU1 = REPO / "tests" / "data" / "wsi" / "CMU-1-Small-Region.svs"


def clam_mask(rgb: np.ndarray, mpp: float) -> np.ndarray:
    """CLAM's recipe (median 7 px at its ~32x-downsampled level, Otsu, close 4 px)."""
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV)
    sat = cv2.medianBlur(hsv[..., 1], 7)
    _, mask = cv2.threshold(sat, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((4, 4), np.uint8))
    return mask.astype(bool)


def grey_otsu_mask(rgb: np.ndarray, mpp: float) -> np.ndarray:
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    _, mask = cv2.threshold(grey, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    return mask.astype(bool)


def ours(rgb: np.ndarray, mpp: float) -> np.ndarray:
    return tissue_mask(rgb, mpp, SegmentationParams())


def dice_iou(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    inter = float(np.logical_and(a, b).sum())
    union = float(np.logical_or(a, b).sum())
    total = float(a.sum() + b.sum())
    return (2 * inter / total if total else 1.0), (inter / union if union else 1.0)


def read_tile(path: Path) -> np.ndarray:
    rgba = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    rgb = cv2.cvtColor(rgba[..., :3], cv2.COLOR_BGR2RGB)
    if rgba.shape[2] == 4:  # composite over white
        alpha = rgba[..., 3:4].astype(np.float32) / 255
        rgb = (rgb * alpha + 255 * (1 - alpha)).astype(np.uint8)
    return rgb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    args = parser.parse_args()
    methods = {"ours": ours, "CLAM": clam_mask, "grey Otsu": grey_otsu_mask}

    slide, info = open_slide(CMU1, "cmu1")
    with slide:
        thumb = read_scaled(slide, info, 8.0)
    mpp = float(info.mpp * info.dimensions[0] / thumb.shape[1])
    masks = {name: fn(thumb, mpp) for name, fn in methods.items()}
    print(f"CMU-1-Small-Region thumbnail {thumb.shape[1]}x{thumb.shape[0]} px at {mpp:.2f} "
          "um/px\n\n| pair | Dice | IoU | tissue share (first) |\n|---|---|---|---|")
    for other in ("CLAM", "grey Otsu"):
        d, j = dice_iou(masks["ours"], masks[other])
        print(f"| ours vs {other} | {d:.3f} | {j:.3f} | {masks['ours'].mean():.3f} |")
    d, j = dice_iou(masks["CLAM"], masks["grey Otsu"])
    print(f"| CLAM vs grey Otsu | {d:.3f} | {j:.3f} | {masks['CLAM'].mean():.3f} |")

    tiles = sorted((args.shared / "tiles").glob("*.png"))
    if not tiles:
        print(f"\n(no tiles under {args.shared / 'tiles'})")
        return
    print("\n| tile | ours | CLAM | grey Otsu |\n|---|---|---|---|")
    agree = {"CLAM": 0, "grey Otsu": 0}
    for path in tiles:
        rgb = read_tile(path)
        # the tiles are 512-956 px crops of unknown scan resolution: treat them as 0.5 um/px
        # and mask them at 2 um/px (a pipeline thumbnail of a 0.5 mm crop would be too small)
        small = cv2.resize(rgb, (rgb.shape[1] // 4, rgb.shape[0] // 4),
                           interpolation=cv2.INTER_AREA)
        frac = {name: float(fn(small, 2.0).mean()) for name, fn in methods.items()}
        for other in agree:
            agree[other] += (frac["ours"] >= 0.1) == (frac[other] >= 0.1)
        print(f"| {path.stem.removeprefix('histolab_')} | {frac['ours']:.2f} | "
              f"{frac['CLAM']:.2f} | {frac['grey Otsu']:.2f} |")
    print("\ntissue/background agreement (tissue fraction >= 0.1): " + ", ".join(
        f"ours vs {k} {v}/{len(tiles)}" for k, v in agree.items()))


if __name__ == "__main__":
    main()
