"""Drawing patch attention: slide thumbnail overlays, top-patch grids, QuPath GeoJSON.

Attention is shown as its *percentile within the slide* (as CLAM does): raw attention weights
sum to one over a bag, so their scale depends on the number of patches and says nothing
across slides; percentiles show where the model looked, comparable between panels.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import openslide  # noqa: E402

from histodistill.io import atomic_path, write_json  # noqa: E402
from histodistill.wsi.slide import rgba_to_rgb  # noqa: E402

THUMB_PX = 900  # longest side of the overlay thumbnail


@dataclass
class SlidePatches:
    slide_id: str
    path: Path
    coords: np.ndarray  # (N, 2) level-0 top-left corners
    size0: int  # patch side in level-0 pixels


def percentile(values: np.ndarray) -> np.ndarray:
    """Rank of each value within the slide, 0 (lowest) to 100 (highest)."""
    if len(values) < 2:
        return np.full(len(values), 100.0)
    ranks = np.argsort(np.argsort(values, kind="stable"), kind="stable")
    return 100.0 * ranks / (len(values) - 1)


def thumbnail(slide: openslide.OpenSlide, max_px: int = THUMB_PX) -> tuple[np.ndarray, float]:
    """RGB thumbnail and its scale (thumbnail px per level-0 px)."""
    w, h = slide.dimensions
    scale = max_px / max(w, h)
    thumb = slide.get_thumbnail((max(1, round(w * scale)), max(1, round(h * scale))))
    arr = np.asarray(thumb.convert("RGB"))
    return arr, arr.shape[1] / w


def _heat_layer(shape: tuple[int, int], patches: SlidePatches, scale: float,
                pct: np.ndarray) -> np.ndarray:
    """(H, W) array of attention percentiles on the patches, NaN elsewhere."""
    layer = np.full(shape, np.nan)
    side = max(1, round(patches.size0 * scale))
    for (x, y), v in zip(patches.coords, pct, strict=True):
        x0, y0 = int(x * scale), int(y * scale)
        layer[y0:y0 + side, x0:x0 + side] = v
    return layer


def overlay_jpg(patches: SlidePatches, maps: dict[str, np.ndarray], title: str,
                out_jpg: str | Path) -> None:
    """One panel per map: the thumbnail with the map's percentiles in colour on the patches
    (JPEG: an H&E thumbnail is 3-4x smaller than as PNG, and the report embeds many)."""
    slide = openslide.OpenSlide(str(patches.path))
    try:
        thumb, scale = thumbnail(slide)
    finally:
        slide.close()
    n = len(maps)
    cols = min(n, 3)
    rows = int(np.ceil(n / cols))
    aspect = thumb.shape[0] / thumb.shape[1]
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 4.2 * rows * aspect + 0.8),
                             squeeze=False)
    image = None
    for ax, (name, values) in zip(axes.flat, maps.items(), strict=False):
        ax.imshow(thumb)
        layer = _heat_layer(thumb.shape[:2], patches, scale, percentile(values))
        image = ax.imshow(np.ma.masked_invalid(layer), cmap="turbo", vmin=0, vmax=100,
                          alpha=0.5, interpolation="nearest")
        ax.set_title(textwrap.fill(name.replace(":", ": "), 34), fontsize=8)
    for ax in axes.flat:
        ax.set_axis_off()
    fig.suptitle(title, fontsize=10)
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6,
                     label="attention percentile within slide")
    with atomic_path(out_jpg) as tmp:
        fig.savefig(tmp, dpi=80, pil_kwargs={"quality": 85})
    plt.close(fig)


def top_patches_jpg(patches: SlidePatches, attention: np.ndarray, title: str,
                    out_jpg: str | Path, k: int = 8, px: int = 160) -> list[int]:
    """The ``k`` patches with the highest attention, read at level 0, as a JPEG grid (H&E
    compresses ~10x better than as PNG); returns their indices."""
    order = np.argsort(-attention, kind="stable")[:k]
    slide = openslide.OpenSlide(str(patches.path))
    try:
        tiles = [rgba_to_rgb(np.asarray(slide.read_region(
            (int(patches.coords[i, 0]), int(patches.coords[i, 1])), 0,
            (patches.size0, patches.size0)).resize((px, px)))) for i in order]
    finally:
        slide.close()
    cols = min(4, max(1, len(tiles)))
    rows = max(1, int(np.ceil(len(tiles) / cols)))
    fig, axes = plt.subplots(rows, cols, figsize=(2.1 * cols, 2.5 * rows + 0.4), squeeze=False)
    pct = percentile(attention)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, i, tile in zip(axes.flat, order, tiles, strict=False):
        ax.imshow(tile)
        ax.set_title(f"#{i} ({patches.coords[i, 0]}, {patches.coords[i, 1]})\n"
                     f"attention {attention[i]:.3g} (p{pct[i]:.0f})", fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    with atomic_path(out_jpg) as tmp:
        fig.savefig(tmp, dpi=80, pil_kwargs={"quality": 85})
    plt.close(fig)
    return [int(i) for i in order]


def attention_geojson(patches: SlidePatches, maps: dict[str, np.ndarray],
                      properties: dict[str, object], out_path: str | Path) -> None:
    """One square detection per patch (level-0 pixels) with every map as a QuPath measurement
    (raw value and within-slide percentile), so QuPath can colour the slide by any of them."""
    pcts = {name: percentile(v) for name, v in maps.items()}
    s = patches.size0
    features = []
    for i, (x, y) in enumerate(patches.coords.tolist()):
        ring = [[x, y], [x + s, y], [x + s, y + s], [x, y + s], [x, y]]
        measurements = {}
        for name, v in maps.items():
            measurements[name] = float(v[i])
            measurements[f"{name} percentile"] = round(float(pcts[name][i]), 2)
        features.append({"type": "Feature", "id": f"{patches.slide_id}-patch-{i}",
                         "geometry": {"type": "Polygon", "coordinates": [ring]},
                         "properties": {"objectType": "detection", "name": f"patch {i}",
                                        "measurements": measurements}})
    write_json(out_path, {"type": "FeatureCollection", "features": features,
                          "properties": {"slide": patches.slide_id, **properties}})
