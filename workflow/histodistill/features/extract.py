"""Feature extraction: many slides through one loaded model, one feature h5 per slide.

The model is built once per call (``extract_features``), so a job given many slides - a shard -
pays for loading (and ``torch.compile``) once. Tiles of all the slides stream through one
DataLoader (``features.tiles``): worker processes read and resize, batches arrive as uint8
in pinned memory and are copied without blocking; normalisation and autocast run on the
device. The result of batch i is copied back and written while batch i + 1 computes, so the
GPU does not wait for HDF5. Host memory is a few batches, whatever the slide size.

Every slide's file is written under a temporary name and renamed when complete; a slide
that fails (``wsi.on_slide_error: exclude``) gets a zero-row file that says why.

Feature h5 (``features/{extractor}/{slide}.h5``)::

    features  (N, D) float32, row i belongs to coords[i]
    coords    (N, 2) int64 level-0 (x, y), with the tiling attributes copied from patches/
    attrs     extractor, arch, dim, weights_sha256, weights_source, random_weights, precision,
              code_version, torch/timm versions, slide_id, status ("ok" | "failed"), reason,
              features_sha256 (of the two arrays as written), reuse_key (features.reuse),
              tile_reader ("tiff-jpeg": the stored JPEG tiles, or "openslide")
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import h5py
import numpy as np
import torch
from torch.utils.data import DataLoader

from histodistill.device import resolve_device
from histodistill.errors import HistodistillError, InputError, SlideError
from histodistill.features.factory import LoadedExtractor, build_extractor
from histodistill.features.reuse import ReuseStore, file_identity
from histodistill.features.rows import feature_chunks
from histodistill.features.tiles import SlideTiles, TileBatches, choose_reader
from histodistill.io import atomic_path
from histodistill.provenance import versions
from histodistill.wsi.status import OK, check_on_error, guarded, h5_status, upstream_failure
from histodistill.wsi.tiling import read_geometry, write_failed_h5

log = logging.getLogger(__name__)
DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class SlideJob:
    slide_id: str
    slide_path: str
    patches_h5: str
    out_h5: str


class Runner:
    """The encoder on its device: precision, channels-last for CNNs, optional compile."""

    def __init__(self, ext: LoadedExtractor, device: torch.device, precision: str,
                 compile_model: bool, batch_size: int) -> None:
        if precision not in ("auto", *DTYPES):
            raise HistodistillError(f"features.precision must be auto, fp32, bf16 or fp16, "
                                    f"not {precision!r}")
        self.device, self.batch_size = device, batch_size
        # a GPU runs the model in its published precision; a CPU always in float32
        name = ext.spec.precision if precision == "auto" else precision
        self.precision = name if device.type == "cuda" else "fp32"
        self.dtype = DTYPES[self.precision]
        self.channels_last = device.type == "cuda" and ext.spec.pooling == "stage_avg"
        encoder = ext.encoder.to(device)
        if self.channels_last:
            encoder = encoder.to(memory_format=torch.channels_last)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
        self.compiled = compile_model
        self.model = torch.compile(encoder, dynamic=False) if compile_model else encoder

    def __call__(self, tiles: torch.Tensor) -> torch.Tensor:
        n = len(tiles)
        tiles = tiles.to(self.device, non_blocking=True)
        if self.compiled and n < self.batch_size:  # one shape: no recompilation per slide end
            tiles = torch.cat([tiles, tiles.new_zeros((self.batch_size - n, *tiles.shape[1:]))])
        if self.channels_last:
            tiles = tiles.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=self.dtype or torch.float32,
                            enabled=self.dtype is not None):
            return self.model(tiles)[:n]


class FeatureWriter:
    """One slide's feature h5, written under a temporary name; ``close`` renames it."""

    def __init__(self, tiles: SlideTiles, out_h5: str, dim: int, attrs: dict[str, object],
                 on_close: Callable[[], None] | None = None):
        self.tiles, self.attrs, self.n, self.dim = tiles, attrs, len(tiles.coords), dim
        self._on_close = on_close
        self._stack = ExitStack()
        tmp = self._stack.enter_context(atomic_path(out_h5))
        self._file = self._stack.enter_context(h5py.File(tmp, "w"))
        self._feats = self._file.create_dataset(
            "features", shape=(self.n, dim), dtype="float32", chunks=feature_chunks(self.n, dim))
        self.written = 0
        self._digest = hashlib.sha256()  # of what is written: the index never re-reads it

    def write(self, start: int, batch: np.ndarray) -> None:
        if start != self.written:
            raise HistodistillError(f"{self.tiles.slide_id}: rows out of order")
        self._feats[start:start + len(batch)] = batch
        self._digest.update(batch.tobytes())
        self.written += len(batch)

    def close(self) -> None:
        if self.written != self.n:
            raise HistodistillError(f"{self.tiles.slide_id}: wrote {self.written} of {self.n}")
        coords = np.ascontiguousarray(self.tiles.coords, dtype=np.int64)
        ds = self._file.create_dataset("coords", data=coords)
        ds.attrs.update(self.tiles.coord_attrs)
        self._digest.update(coords.tobytes())
        self._file.attrs.update({**self.attrs, "status": OK,
                                 "features_sha256": self._digest.hexdigest()})
        self._stack.close()
        log.info("%s: %d x %d features", self.tiles.slide_id, self.n, self.dim)
        if self._on_close is not None:
            self._on_close()

    def abort(self) -> None:
        """Drop the temporary file; nothing appears under the final name."""
        self._stack.__exit__(HistodistillError, HistodistillError("aborted"), None)


def _attrs(ext: LoadedExtractor, runner: Runner, code_version: str) -> dict[str, object]:
    """The attributes every feature file of this run shares (each adds its slide_id)."""
    spec = ext.spec
    return {
        "extractor": spec.name, "arch": spec.arch, "dim": spec.dim,
        "weights_sha256": ext.weights_sha256, "weights_source": ext.weights_source,
        "random_weights": ext.random_weights, "precision": runner.precision,
        "code_version": code_version, "device": runner.device.type,
        **{f"version_{k}": v for k, v in versions("torch", "timm").items()},
    }


def _read_patches(job: SlideJob, ext: LoadedExtractor, tile_reader: str = "auto"
                  ) -> SlideTiles:
    with h5py.File(job.patches_h5, "r") as src:
        coords = src["coords"][:]
        geom = read_geometry(src)
        coord_attrs = dict(src["coords"].attrs)
    spec = ext.spec
    if spec.input_px is not None and geom.patch_px != spec.input_px:
        raise InputError(f"extractor {spec.name!r} expects {spec.input_px} px tiles but "
                         f"{job.patches_h5} has {geom.patch_px} px; set wsi.tiling.patch_px: "
                         f"{spec.input_px} (and patch_um for the model's {spec.mpp} um/px)")
    tiles = SlideTiles(job.slide_id, job.slide_path, coords, geom, coord_attrs)
    return replace(tiles, reader=choose_reader(tiles, tile_reader))


def extract_features(jobs: list[SlideJob], extractor: str, weights: str | Path | None, *,
                     seed: int = 0, batch_size: int = 64, workers: int | str = 0,
                     device: str = "auto", precision: str = "auto", compile_model: bool = False,
                     code_version: str = "", on_error: str = "stop", tile_reader: str = "auto"
                     ) -> dict[str, int]:
    """Extract features for many slides with one model load; returns tiles per slide (0 for
    a slide that failed, here or in an earlier step, under ``on_error="exclude"``).
    ``tile_reader``: ``auto`` reads a slide's stored JPEG tiles where that gives OpenSlide's
    pixels (features/jpeg_tiles.py), ``openslide`` always reads through OpenSlide.

    Slides whose result from an earlier run is still valid are restored from the reuse store
    (``features.reuse``); when every slide is, the model is not even loaded."""
    mode = check_on_error(on_error)
    torch_device = resolve_device(device)
    store = ReuseStore({"extractor": extractor, "weights": file_identity(weights), "seed": seed,
                        "precision": precision, "compile": compile_model,
                        "batch_size": batch_size, "device": torch_device.type,
                        "code_version": code_version})
    counts: dict[str, int] = {}
    upstream: list[tuple[SlideJob, SlideError]] = []
    todo: list[SlideJob] = []
    for job in jobs:
        failure = upstream_failure(job.slide_id, job.slide_path, *h5_status(job.patches_h5))
        if failure is not None:
            upstream.append((job, failure))
            continue
        restored = store.restore(job.slide_id, job.slide_path, job.patches_h5, job.out_h5)
        if restored is None:
            todo.append(job)
        else:
            counts[job.slide_id] = restored
    if upstream or todo:
        counts.update(_compute(
            todo, upstream, store, partial(build_extractor, extractor, weights, seed),
            partial(Runner, device=torch_device, precision=precision,
                    compile_model=compile_model, batch_size=batch_size),
            reader_count(workers, torch_device), code_version, mode, tile_reader))
    return {job.slide_id: counts[job.slide_id] for job in jobs}


def reader_count(workers: int | str, device: torch.device) -> int:
    """``features.num_workers``: a count, or ``auto``: on a GPU every thread of the job (torch's
    thread count, which the rule sets to Snakemake's ``threads``) but the one that drives the
    GPU reads tiles; on a CPU none, as the model needs the threads and is the bottleneck there
    (end to end equals model-only, benchmarks/RESULTS.md)."""
    if workers == "auto":
        return max(torch.get_num_threads() - 1, 0) if device.type == "cuda" else 0
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
        raise HistodistillError(f"features.num_workers must be a count >= 0 or 'auto', got "
                                f"{workers!r}")
    return workers


def _compute(todo: list[SlideJob], upstream: list[tuple[SlideJob, SlideError]],
             store: ReuseStore, load: Callable[[], LoadedExtractor],
             make_runner: Callable[[LoadedExtractor], Runner], workers: int,
             code_version: str, mode: str, tile_reader: str = "auto") -> dict[str, int]:
    """Load the model once; write failed files for upstream failures, features for ``todo``."""
    ext = load()
    runner = make_runner(ext)
    attrs = _attrs(ext, runner, code_version)

    def failed(job: SlideJob, exc: SlideError) -> int:
        write_failed_h5(job.out_h5, job.slide_id, exc.reason,
                        {"features": (0, ext.spec.dim), "coords": (0, 2)},
                        {**attrs, "slide_id": job.slide_id})
        return 0

    counts = {job.slide_id: guarded(mode, lambda: 0, lambda e, j=job: failed(j, e), failure)
              for job, failure in upstream}
    ready = [(job, _read_patches(job, ext, tile_reader)) for job in todo]

    def unreadable(job: SlideJob, exc: SlideError) -> int:
        return guarded(mode, partial(_raise, exc), lambda e: failed(job, e))

    counts.update(_stream(ready, runner, workers, ext.spec.dim, attrs, unreadable, store))
    return counts


def _raise(exc: SlideError) -> int:
    raise exc


def _stream(ready: list[tuple[SlideJob, SlideTiles]], runner: Runner, workers: int, dim: int,
            attrs: dict[str, object], on_failure: Callable[[SlideJob, SlideError], int],
            store: ReuseStore) -> dict[str, int]:
    """Run every tile of ``ready`` through the model, writing each slide as it completes."""
    slides = [tiles for _, tiles in ready]
    loader = DataLoader(TileBatches(slides, runner.batch_size), batch_size=None,
                        num_workers=workers, pin_memory=runner.device.type == "cuda",
                        prefetch_factor=4 if workers else None)
    writers: dict[int, FeatureWriter] = {}
    counts: dict[str, int] = {}
    dead: set[int] = set()

    def writer(k: int) -> FeatureWriter:
        if k not in writers:
            job, tiles = ready[k]
            key = store.key(job.slide_id, job.slide_path, job.patches_h5)
            writers[k] = FeatureWriter(tiles, job.out_h5, dim,
                                       {**attrs, "slide_id": job.slide_id, "reuse_key": key,
                                        "tile_reader": tiles.reader},
                                       on_close=partial(store.keep, job.out_h5))
        return writers[k]

    def flush(pending: tuple[int, int, torch.Tensor] | None) -> None:
        if pending is None or pending[0] in dead:
            return
        k, start, emb = pending
        w = writer(k)
        w.write(start, np.ascontiguousarray(emb.float().cpu().numpy()))
        if w.written == w.n:
            writers.pop(k).close()
            counts[ready[k][0].slide_id] = w.n

    pending = None
    try:
        with torch.inference_mode():
            for k, start, payload in loader:
                if k in dead:
                    continue
                if isinstance(payload, str):  # this slide cannot be read: it alone fails
                    flush(pending)  # slides before it complete first
                    pending = None
                    dead.add(k)
                    if k in writers:
                        writers.pop(k).abort()
                    job = ready[k][0]
                    counts[job.slide_id] = on_failure(
                        job, SlideError(job.slide_id, job.slide_path, payload))
                    continue
                emb = runner(payload)  # queued on the GPU; the previous batch is written now
                flush(pending)
                pending = (k, start, emb)
            flush(pending)
        for k, (job, _) in enumerate(ready):  # slides without a tile
            if job.slide_id not in counts and k not in dead:
                writer(k).close()
                counts[job.slide_id] = 0
    except BaseException:
        for w in writers.values():
            w.abort()
        raise
    return counts
