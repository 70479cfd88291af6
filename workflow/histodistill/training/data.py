"""Patients as training records, their bags of patch features, and fold-fitted scaling."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from histodistill.errors import InputError

log = logging.getLogger(__name__)


@dataclass
class PatientRecord:
    patient: str
    time: float
    event: int
    interval: int  # discrete-time bin of ``time``
    slides: list[str]
    pathways: np.ndarray | None  # raw privileged vector (K,), None when the patient lacks it
    label: float | None = None  # binary endpoint (binary tasks only)


def usable_slides(slides_of: dict[str, list[str]], feature_h5s: list[str]) -> dict[str, str]:
    """Drop slides whose feature file says they failed (``wsi.on_slide_error: exclude``) from
    ``slides_of``, in place; returns {slide: reason} of the dropped ones."""
    from histodistill.wsi.status import FAILED, h5_status

    failed = {}
    for path in feature_h5s:
        status, reason = h5_status(path)
        if status == FAILED:
            failed[Path(path).stem] = reason
    for patient, slides in slides_of.items():
        slides_of[patient] = [s for s in slides if s not in failed]
    if failed:
        log.warning("%d slides excluded after failing: %s", len(failed), ", ".join(failed))
    return failed


class FeatureBank:
    """Bags of patch features by patient: the concatenation of all of the patient's slides.

    Files are read on first use and kept in memory while the cache holds less than
    ``cache_mb`` (then read from disk each time), so memory stays bounded however many
    patches a cohort has. All files must come from the same extractor; its identity is exposed
    as ``extractor_attrs`` for provenance.
    """

    def __init__(self, paths: dict[str, Path], cache_mb: float = 2048.0):
        self.paths = paths
        self.cache_bytes = cache_mb * 2**20
        self.cached_bytes = 0
        self._bags: dict[str, np.ndarray] = {}
        self.extractor_attrs: dict[str, object] = {}
        self.dim: int | None = None

    def _read(self, slide: str) -> np.ndarray:
        if slide not in self.paths:
            raise InputError(f"no feature file for slide {slide!r}")
        with h5py.File(self.paths[slide], "r") as f:
            feats = f["features"][:]
            attrs = {k: f.attrs[k] for k in ("extractor", "weights_sha256", "random_weights")
                     if k in f.attrs}
        if self.dim is None:
            self.dim, self.extractor_attrs = feats.shape[1], attrs
        elif feats.shape[1] != self.dim or attrs.get("weights_sha256") != \
                self.extractor_attrs.get("weights_sha256"):
            raise InputError(f"{self.paths[slide]} was made by a different extractor than the "
                             "other slides' features; re-run extract_features")
        return feats

    def bag(self, slides: list[str]) -> np.ndarray:
        parts = []
        for s in slides:
            if s in self._bags:
                parts.append(self._bags[s])
                continue
            feats = self._read(s)
            if self.cached_bytes + feats.nbytes <= self.cache_bytes:
                self._bags[s] = feats
                self.cached_bytes += feats.nbytes
            parts.append(feats)
        return np.concatenate(parts, axis=0)


@dataclass(frozen=True)
class Standardiser:
    """Per-feature z-scoring with mean/sd fitted on the training part of a fold."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> Standardiser:
        if len(x) < 2:
            raise InputError("fewer than 2 training patients with RNA in this fold; cannot fit "
                             "the pathway-score scaling")
        std = x.std(axis=0, ddof=1)
        return cls(x.mean(axis=0), np.where(std > 1e-8, std, 1.0))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std).astype(np.float32)


def fit_feature_scaler(bank: FeatureBank, records: list[PatientRecord], per_patient: int,
                       rng: np.random.Generator) -> Standardiser:
    """Per-dimension standardiser of patch features, fitted on (a sample of at most
    ``per_patient`` patches of) each *training* patient - encoders differ wildly in scale."""
    parts = []
    for rec in records:
        bag = bank.bag(rec.slides)
        parts.append(bag[sample_bag(len(bag), per_patient, rng)])
    return Standardiser.fit(np.concatenate(parts).astype(np.float64))


def sample_bag(n: int, max_patches: int | None, rng: np.random.Generator) -> np.ndarray:
    """Indices of a random subset of at most ``max_patches`` patches (memory stays bounded)."""
    if max_patches is None or n <= max_patches:
        return np.arange(n)
    return np.sort(rng.choice(n, size=max_patches, replace=False))


def build_records(clinical: pd.DataFrame, patients: list[str], slides_of: dict[str, list[str]],
                  pathways: pd.DataFrame | None, intervals: np.ndarray,
                  labels: pd.Series | None = None) -> list[PatientRecord]:
    records = []
    for p, interval in zip(patients, intervals, strict=True):
        pw = None
        if pathways is not None and p in pathways.index:
            pw = pathways.loc[p].to_numpy(dtype=np.float64)
        label = None if labels is None else float(labels.at[p])
        records.append(PatientRecord(p, float(clinical.at[p, "time"]),
                                     int(clinical.at[p, "event"]), int(interval),
                                     slides_of.get(p, []), pw, label))
    return records
