"""Paint a synthetic H&E-like level-0 image whose appearance encodes visible programmes.

Sizes are defined in micrometres and converted with the slide's mpp, so the same phenotype
looks the same at any scan resolution. The three visible morphologies:

* ``nuclear_density`` - hematoxylin-dark nuclei per mm^2 of tissue scale with exp(0.45 z);
* ``fibrosis`` - eosinophilic collagen streaks per mm^2 scale with exp(0.6 z);
* ``pallor`` - the fraction of tissue turned pale and nucleus-poor rises with sigmoid(1.5 z).
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np

BACKGROUND = np.array([242.0, 241.0, 239.0])
STROMA = np.array([226.0, 152.0, 192.0])
PALE = np.array([238.0, 214.0, 228.0])
NUCLEUS = np.array([72.0, 42.0, 124.0])
COLLAGEN = np.array([205.0, 86.0, 146.0])

BASE_NUCLEI_PER_MM2 = 4000.0
BASE_STREAKS_PER_MM2 = 250.0


def _smooth_field(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """A smooth random field in [0, 1] of ``shape`` (H, W) with about ``cells`` blobs across.

    Noise is smoothed on a coarse grid (8 samples per blob) and upsampled: blurring at full
    resolution with a blob-sized kernel would cost seconds per slide.
    """
    h, w = shape
    scale = 8 * cells / max(h, w)
    gh, gw = max(8, round(h * scale)), max(8, round(w * scale))
    coarse = cv2.GaussianBlur(rng.normal(size=(gh, gw)).astype(np.float32), (0, 0), sigmaX=2.0)
    field = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
    lo, hi = float(field.min()), float(field.max())
    return (field - lo) / (hi - lo + 1e-9)


def tissue_region(rng: np.random.Generator, shape: tuple[int, int], fraction: float = 0.45
                  ) -> np.ndarray:
    """Boolean mask of organic tissue blobs kept away from the slide edge."""
    h, w = shape
    field = _smooth_field(rng, shape, cells=5)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    envelope = 1.0 - (((xx - w / 2) / (0.55 * w)) ** 2 + ((yy - h / 2) / (0.55 * h)) ** 2)
    score = field + 0.8 * np.clip(envelope, 0, None)
    return score > np.quantile(score, 1.0 - fraction)


def paint_slide(rng: np.random.Generator, shape: tuple[int, int], mpp: float,
                phenotype: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Return (RGB uint8 image, tissue mask) for one slide.

    ``phenotype`` maps a morphology name to the programme's standardised level z.
    """
    h, w = shape
    px_per_um = 1.0 / mpp
    tissue = tissue_region(rng, shape)
    tissue_u8 = tissue.astype(np.uint8)
    glass = np.empty((h, w, 3), np.float32)
    glass[:] = BACKGROUND
    texture = _smooth_field(rng, shape, cells=40)[..., None]
    img = glass.copy()
    cv2.copyTo(STROMA.astype(np.float32) + (texture - 0.5) * 24.0, tissue_u8, img)

    z_pallor = phenotype.get("pallor", 0.0)
    pale_fraction = 0.35 / (1.0 + np.exp(-1.5 * z_pallor))
    pale_field = _smooth_field(rng, shape, cells=12)
    pale = tissue & (pale_field > np.quantile(pale_field[tissue], 1.0 - pale_fraction))
    cv2.copyTo((0.75 * PALE).astype(np.float32) + 0.25 * img, pale.astype(np.uint8), img)

    tissue_mm2 = tissue.sum() * (mpp / 1000.0) ** 2
    ys, xs = np.nonzero(tissue)

    def sample_points(n: int) -> np.ndarray:
        idx = rng.integers(0, len(xs), size=n)
        return np.stack([xs[idx], ys[idx]], axis=1)

    z_fib = phenotype.get("fibrosis", 0.0)
    n_streaks = rng.poisson(BASE_STREAKS_PER_MM2 * np.exp(0.6 * z_fib) * tissue_mm2)
    for (x, y), length_um, angle, width_um in zip(
            sample_points(n_streaks), rng.uniform(40, 120, n_streaks),
            rng.uniform(0, np.pi, n_streaks), rng.uniform(2, 4, n_streaks), strict=True):
        half = length_um * px_per_um / 2
        dx, dy = np.cos(angle) * half, np.sin(angle) * half
        cv2.line(img, (int(x - dx), int(y - dy)), (int(x + dx), int(y + dy)),
                 COLLAGEN.tolist(), max(1, int(round(width_um * px_per_um))), cv2.LINE_AA)

    z_nuc = phenotype.get("nuclear_density", 0.0)
    n_nuclei = rng.poisson(BASE_NUCLEI_PER_MM2 * np.exp(0.45 * z_nuc) * tissue_mm2)
    centres = sample_points(n_nuclei)
    keep = ~pale[centres[:, 1], centres[:, 0]] | (rng.random(n_nuclei) < 0.2)
    radii = rng.uniform(3.0, 4.5, n_nuclei) * px_per_um
    shades = NUCLEUS + rng.normal(0, 10, (n_nuclei, 3))
    for (x, y), r, ratio, angle, shade in zip(
            centres[keep], radii[keep], rng.uniform(0.6, 1.0, n_nuclei)[keep],
            rng.uniform(0, 180, n_nuclei)[keep], shades[keep], strict=True):
        cv2.ellipse(img, (int(x), int(y)), (max(1, int(r)), max(1, int(r * ratio))), float(angle),
                    0, 360, shade.tolist(), -1, cv2.LINE_AA)

    # Per-slide staining variation (a nuisance) lives in the tissue; the scanner white-balances
    # the glass, and streaks and nuclei must not spill onto it.
    img *= (1.0 + rng.normal(0, 0.03, 3)).astype(np.float32)
    cv2.copyTo(glass, 1 - tissue_u8, img)
    img += 2.0 * rng.standard_normal((h, w, 1), dtype=np.float32)
    return np.clip(img, 0, 255).astype(np.uint8), tissue
