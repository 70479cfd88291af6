"""Write pyramidal tiled TIFFs that OpenSlide opens as a "generic-tiff" slide.

Levels are separate pages (reduced-resolution pages carry ``subfiletype=1``), each tiled and
JPEG-compressed, with the resolution tags set so that OpenSlide reports ``openslide.mpp-x``.
"""

from __future__ import annotations

import os

import cv2
import numpy as np
import tifffile

from histodistill.io import atomic_path


def write_pyramidal_tiff(path: str | os.PathLike[str], image: np.ndarray, mpp: float, *,
                         downsample: int = 4, min_level_px: int = 128, min_levels: int = 3,
                         tile: int = 256, quality: int = 85, description: str = ""
                         ) -> list[tuple[int, int]]:
    """Write ``image`` (H, W, 3 uint8, level 0 at ``mpp`` um/px) with a power-of-``downsample``
    pyramid: levels continue while the next one's short side is >= ``min_level_px``, and in
    any case until there are ``min_levels`` (as long as a level keeps at least 1 px).

    Returns the (width, height) of every level written.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 image, got {image.shape} {image.dtype}")
    if not mpp > 0:
        raise ValueError(f"mpp must be positive, got {mpp}")
    dims: list[tuple[int, int]] = []
    with atomic_path(path) as tmp, tifffile.TiffWriter(tmp, bigtiff=image.nbytes > 2**31) as tw:
        level, factor = image, 1
        while True:
            px_per_cm = 1e4 / (mpp * factor)
            tw.write(level, photometric="rgb", tile=(tile, tile), compression="jpeg",
                     compressionargs={"level": quality}, subfiletype=0 if factor == 1 else 1,
                     resolution=(px_per_cm, px_per_cm), resolutionunit="CENTIMETER",
                     description=description if factor == 1 else None, metadata=None)
            dims.append((level.shape[1], level.shape[0]))
            nxt = (level.shape[1] // downsample, level.shape[0] // downsample)
            if min(nxt) < 1 or (min(nxt) < min_level_px and len(dims) >= min_levels):
                break
            level = cv2.resize(level, nxt, interpolation=cv2.INTER_AREA)
            factor *= downsample
    return dims
