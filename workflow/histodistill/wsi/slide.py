"""Open a slide with OpenSlide, establish its physical resolution, choose pyramid levels."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import openslide

from histodistill.errors import SlideError
from histodistill.units import MicronsPerPixel
from histodistill.wsi.diagnose import diagnose

MPP_RANGE = (0.1, 10.0)  # outside this, the metadata (or the sheet) is almost surely wrong


@dataclass(frozen=True)
class SlideInfo:
    slide_id: str
    path: str
    mpp: MicronsPerPixel  # level 0
    mpp_source: str  # "metadata" or "sheet"
    dimensions: tuple[int, int]  # level-0 (width, height)
    level_dimensions: tuple[tuple[int, int], ...]
    level_downsamples: tuple[float, ...]
    vendor: str

    def best_level(self, downsample: float) -> int:
        """The coarsest level whose downsample is <= ``downsample`` (never upsample a tile)."""
        best = 0
        for level, ds in enumerate(self.level_downsamples):
            if ds <= downsample * (1 + 1e-6):
                best = level
        return best


def open_slide(path: str | Path, slide_id: str, mpp_override: float | None = None
               ) -> tuple[openslide.OpenSlide, SlideInfo]:
    """Open ``path`` and read its level-0 mpp (the sheet's ``mpp`` wins when given).

    Raises :class:`SlideError` naming the slide when the file is missing or unreadable, when
    no mpp is known, or when the mpp is implausible.
    """
    path = Path(path)
    if not path.exists():
        raise SlideError(slide_id, path, "file does not exist; check the path in the samples "
                         "sheet (relative paths are resolved against the sheet's folder)")
    try:
        slide = openslide.OpenSlide(str(path))
    except openslide.OpenSlideUnsupportedFormatError:
        raise SlideError(slide_id, path, diagnose(path)) from None
    except openslide.OpenSlideError as exc:
        raise SlideError(slide_id, path, f"OpenSlide cannot read the file ({exc}): "
                         f"{diagnose(path)}") from None
    source = "sheet"
    mpp = mpp_override
    if mpp is None or (isinstance(mpp, float) and math.isnan(mpp)):
        source = "metadata"
        mpp = _metadata_mpp(slide)
        if mpp is None:
            slide.close()
            raise SlideError(slide_id, path, "no microns-per-pixel in the slide metadata; add "
                             "the scan resolution in an 'mpp' column of the samples sheet")
    if not MPP_RANGE[0] <= mpp <= MPP_RANGE[1]:
        slide.close()
        raise SlideError(slide_id, path, f"implausible resolution {mpp} um/px ({source}); "
                         f"expected {MPP_RANGE[0]}-{MPP_RANGE[1]} - fix the 'mpp' column of the "
                         "samples sheet")
    info = SlideInfo(
        slide_id=slide_id, path=str(path), mpp=MicronsPerPixel(float(mpp)), mpp_source=source,
        dimensions=tuple(slide.dimensions),  # type: ignore[arg-type]
        level_dimensions=tuple(tuple(d) for d in slide.level_dimensions),  # type: ignore[misc]
        level_downsamples=tuple(float(d) for d in slide.level_downsamples),
        vendor=slide.properties.get(openslide.PROPERTY_NAME_VENDOR, "unknown"),
    )
    return slide, info


def _metadata_mpp(slide: openslide.OpenSlide) -> float | None:
    props = slide.properties
    values = []
    for key in (openslide.PROPERTY_NAME_MPP_X, openslide.PROPERTY_NAME_MPP_Y):
        try:
            values.append(float(props[key]))
        except (KeyError, ValueError):
            return None
    if not all(v > 0 for v in values):
        return None
    return float(np.mean(values))


def read_scaled(slide: openslide.OpenSlide, info: SlideInfo, target_mpp: float,
                max_read_px: int = 1 << 24) -> np.ndarray:
    """The whole slide as an RGB array at (about) ``target_mpp``, read from the best level.

    The level read is the coarsest at or above the needed resolution. It is read in horizontal
    bands of at most ``max_read_px`` pixels, each reduced before the next is read, so memory
    stays bounded even for a slide without a pyramid (a naive read of a 100k x 80k level would
    need 32 GB).
    """
    import cv2

    downsample = target_mpp / info.mpp
    level = info.best_level(downsample)
    w, h = info.level_dimensions[level]
    level_ds = info.level_downsamples[level]
    out_w = max(1, round(info.dimensions[0] / downsample))
    out_h = max(1, round(info.dimensions[1] / downsample))
    rows_per_band = max(1, int(max_read_px // max(1, w * h / out_h)))
    bands = []
    for y0 in range(0, out_h, rows_per_band):
        y1 = min(out_h, y0 + rows_per_band)
        ly0, ly1 = int(y0 * h / out_h), min(h, max(int(np.ceil(y1 * h / out_h)), 1))
        try:
            region = rgba_to_rgb(np.asarray(slide.read_region(
                (0, int(round(ly0 * level_ds))), level, (w, ly1 - ly0))))
        except openslide.OpenSlideError as exc:
            raise SlideError(info.slide_id, info.path, f"reading level {level} failed ({exc}); "
                             "the file may be truncated or corrupt") from None
        if region.shape[:2] != (y1 - y0, out_w):
            region = cv2.resize(region, (out_w, y1 - y0), interpolation=cv2.INTER_AREA)
        bands.append(region)
    return bands[0] if len(bands) == 1 else np.concatenate(bands, axis=0)


def rgba_to_rgb(rgba: np.ndarray) -> np.ndarray:
    """Composite OpenSlide's premultiplied RGBA over white.

    Areas the scanner did not capture come back transparent (0, 0, 0, 0); a plain conversion
    would make them black, which looks like tissue to every segmentation method.
    """
    alpha = rgba[..., 3:4]
    if alpha.min() == 255:
        return np.ascontiguousarray(rgba[..., :3])
    rgb = rgba[..., :3].astype(np.uint16) + (255 - alpha.astype(np.uint16))
    return np.minimum(rgb, 255).astype(np.uint8)
