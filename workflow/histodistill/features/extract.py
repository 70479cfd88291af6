"""Read tiles from slides and write one feature h5 per slide, streaming.

Tiles are read and resized in DataLoader workers (each opens its own OpenSlide handle), sent
to the device as uint8 and normalised there. Features are appended to the h5 batch by batch,
so host memory does not grow with slide size. ``extract_slides`` loads the model once for
many slides - the seam for sharded GPU jobs.

Feature h5 (``features/{extractor}/{slide}.h5``)::

    features  (N, D) float32, row i belongs to coords[i]
    coords    (N, 2) int64 level-0 (x, y), with the tiling attributes copied from patches/
    attrs     extractor, arch, dim, weights_sha256, weights_source, random_weights,
              code_version, torch/timm versions, slide_id, status ("ok" | "failed"), reason
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import h5py
import numpy as np
import openslide
import torch
from torch.utils.data import DataLoader, Dataset

from histodistill.device import resolve_device
from histodistill.errors import HistodistillError, InputError, SlideError
from histodistill.features.registry import LoadedExtractor, build_extractor
from histodistill.io import atomic_path
from histodistill.provenance import versions
from histodistill.wsi.slide import rgba_to_rgb
from histodistill.wsi.status import (
    OK,
    OnError,
    check_on_error,
    guarded,
    h5_status,
    upstream_failure,
)
from histodistill.wsi.tiling import TileGeometry, read_geometry, write_failed_h5

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SlideJob:
    slide_id: str
    slide_path: str
    patches_h5: str
    out_h5: str


class TileDataset(Dataset[torch.Tensor]):
    """Tiles of one slide as uint8 (3, patch_px, patch_px) tensors."""

    def __init__(self, slide_id: str, slide_path: str, coords: np.ndarray, geom: TileGeometry):
        self.slide_id, self.slide_path = slide_id, slide_path
        self.coords, self.geom = coords, geom
        self._slide: openslide.OpenSlide | None = None  # opened lazily, once per worker

    def __len__(self) -> int:
        return len(self.coords)

    def __getitem__(self, i: int) -> torch.Tensor:
        if self._slide is None:
            self._slide = openslide.OpenSlide(self.slide_path)
        x, y = (int(v) for v in self.coords[i])
        g = self.geom
        try:
            rgba = np.asarray(self._slide.read_region(
                (x, y), g.patch_level, (g.patch_size_at_level, g.patch_size_at_level)))
        except openslide.OpenSlideError as exc:
            raise SlideError(self.slide_id, self.slide_path, f"reading the tile at level-0 "
                             f"({x}, {y}) failed: {exc}") from None
        rgb = rgba_to_rgb(rgba)
        if g.patch_size_at_level != g.patch_px:
            interp = cv2.INTER_AREA if g.patch_size_at_level > g.patch_px else cv2.INTER_LINEAR
            rgb = cv2.resize(rgb, (g.patch_px, g.patch_px), interpolation=interp)
        return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))


def _extractor_attrs(job: SlideJob, ext: LoadedExtractor, device: torch.device,
                     code_version: str) -> dict[str, object]:
    spec = ext.spec
    return {
        "slide_id": job.slide_id, "extractor": spec.name, "arch": spec.arch,
        "dim": spec.dim, "weights_sha256": ext.weights_sha256,
        "weights_source": ext.weights_source, "random_weights": ext.random_weights,
        "code_version": code_version, "device": device.type,
        **{f"version_{k}": v for k, v in versions("torch", "timm").items()},
    }


def _extract_or_exclude(job: SlideJob, ext: LoadedExtractor, device: torch.device,
                        batch_size: int, workers: int, code_version: str,
                        on_error: OnError) -> int:
    """Features of one slide; a slide that failed before (or fails here, under ``exclude``)
    gets a zero-row features file that says so (wsi/status.py)."""

    def failed(exc: SlideError) -> int:
        write_failed_h5(job.out_h5, job.slide_id, exc.reason,
                        {"features": (0, ext.spec.dim), "coords": (0, 2)},
                        _extractor_attrs(job, ext, device, code_version))
        return 0

    return guarded(on_error, lambda: _extract_one(job, ext, device, batch_size, workers,
                                                  code_version), failed,
                   upstream_failure(job.slide_id, job.slide_path, *h5_status(job.patches_h5)))


def _extract_one(job: SlideJob, ext: LoadedExtractor, device: torch.device, batch_size: int,
                 workers: int, code_version: str) -> int:
    with h5py.File(job.patches_h5, "r") as src:
        coords = src["coords"][:]
        geom = read_geometry(src)
        coord_attrs = dict(src["coords"].attrs)
    spec = ext.spec
    if spec.input_px is not None and geom.patch_px != spec.input_px:
        raise InputError(f"extractor {spec.name!r} expects {spec.input_px} px tiles but "
                         f"{job.patches_h5} has {geom.patch_px} px; set tiling.patch_px: "
                         f"{spec.input_px}")
    loader = DataLoader(TileDataset(job.slide_id, job.slide_path, coords, geom),
                        batch_size=batch_size, num_workers=workers,
                        pin_memory=device.type == "cuda",
                        persistent_workers=False, prefetch_factor=4 if workers else None)
    use_bf16 = device.type == "cuda"
    with atomic_path(job.out_h5) as tmp, h5py.File(tmp, "w") as out:
        feats = out.create_dataset("features", shape=(len(coords), spec.dim), dtype="float32",
                                   chunks=(min(len(coords), 1024), spec.dim))
        start = 0
        digest = hashlib.sha256()  # of what is written, so the index never re-reads the file
        with torch.inference_mode():
            for tiles in loader:
                tiles = tiles.to(device, non_blocking=True)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                    emb = ext.encoder(tiles)
                batch = np.ascontiguousarray(emb.float().cpu().numpy())
                feats[start:start + len(batch)] = batch
                digest.update(batch.tobytes())
                start += len(batch)
        if start != len(coords):
            raise HistodistillError(f"{job.slide_id}: wrote {start} of {len(coords)} features")
        ds = out.create_dataset("coords", data=coords)
        ds.attrs.update(coord_attrs)
        digest.update(np.ascontiguousarray(coords, dtype=np.int64).tobytes())
        out.attrs.update({**_extractor_attrs(job, ext, device, code_version), "status": OK,
                          "features_sha256": digest.hexdigest()})
    log.info("%s: %d x %d features -> %s", job.slide_id, len(coords), spec.dim, job.out_h5)
    return len(coords)


def extract_slides(jobs: list[SlideJob], extractor: str, weights: str | Path | None, *,
                   seed: int = 0, batch_size: int = 64, workers: int = 0, device: str = "auto",
                   code_version: str = "", on_error: str = "stop") -> dict[str, int]:
    """Extract features for many slides with one model load; returns tiles per slide."""
    mode = check_on_error(on_error)
    dev = resolve_device(device)
    ext = build_extractor(extractor, weights, seed)
    ext.encoder.to(dev)
    return {job.slide_id: _extract_or_exclude(job, ext, dev, batch_size, workers, code_version,
                                              mode) for job in jobs}
