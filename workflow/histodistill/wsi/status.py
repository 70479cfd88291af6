"""Per-slide status: how a cohort run goes on when a few slides cannot be processed.

``wsi.on_slide_error`` decides (config/README.md):

* ``stop`` (default): a bad slide fails its job with an error naming the slide and the reason,
  in the rule's log. With ``snakemake --keep-going`` every other slide is still segmented,
  tiled and encoded (and cached), but for the other slides of its feature shard
  (``features.shards``), which wait with it; the cohort-level steps wait for the fix.
* ``exclude``: the slide's jobs succeed with explicit *failed* outputs - a GeoJSON without
  polygons, a QC card showing the reason, a patches/features h5 with zero rows - each carrying
  ``status = "failed"`` and ``reason``. Training leaves the slide out (and a patient whose
  slides all failed out of the WSI models, with a count in the log); the report lists every
  failed slide with its reason. Nothing is dropped silently.

Only :class:`~histodistill.errors.SlideError` (a problem with that slide's file) is caught;
configuration errors and bugs always stop the job.
"""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np

from histodistill.errors import InputError, SlideError

log = logging.getLogger(__name__)

OnError = Literal["stop", "exclude"]
OK, FAILED = "ok", "failed"
T = TypeVar("T")


def check_on_error(value: str) -> OnError:
    if value not in ("stop", "exclude"):
        raise InputError(f"wsi.on_slide_error must be 'stop' or 'exclude', got {value!r}")
    return value  # type: ignore[return-value]


def guarded(on_error: OnError, work: Callable[[], T], on_failure: Callable[[SlideError], T],
            upstream: SlideError | None = None) -> T:
    """Run ``work``; under ``exclude`` a SlideError becomes ``on_failure(error)``.

    ``upstream``: the slide already failed in an earlier step (its input says so); then
    ``work`` is skipped and the failure is passed on, whatever ``on_error`` is now."""
    if upstream is not None:
        log.warning("%s - excluded in an earlier step", upstream)
        return on_failure(upstream)
    try:
        return work()
    except SlideError as exc:
        if on_error != "exclude":
            raise
        log.error("%s - excluded (wsi.on_slide_error: exclude)", exc)
        return on_failure(exc)


def error_card(slide_id: str, reason: str, width: int = 640) -> np.ndarray:
    """A white RGB image stating that the slide failed and why (the slide's QC image)."""
    import cv2

    lines = [f"slide {slide_id}: FAILED, excluded", *textwrap.wrap(reason, 60)]
    card = np.full((40 + 26 * len(lines), width, 3), 255, np.uint8)
    for i, line in enumerate(lines):
        cv2.putText(card, line, (16, 34 + 26 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.55,
                    (200, 0, 0) if i == 0 else (30, 30, 30), 1, cv2.LINE_AA)
    return card


def h5_status(path: str | Path) -> tuple[str, str]:
    """(status, reason) recorded in a patches or features h5 (files made before statuses
    existed count as ok)."""
    import h5py

    with h5py.File(path, "r") as f:
        return str(f.attrs.get("status", OK)), str(f.attrs.get("reason", ""))


def upstream_failure(slide_id: str, path: object, status: object, reason: object
                     ) -> SlideError | None:
    """The SlideError an earlier step recorded (``status == "failed"``), else None."""
    return SlideError(slide_id, path, str(reason)) if status == FAILED else None


def failed_attrs(slide_id: str, reason: str) -> dict[str, Any]:
    return {"slide_id": slide_id, "status": FAILED, "reason": reason}


def excluded_slides(files: dict[str, list[str | Path]]) -> list[tuple[str, str, str]]:
    """(cohort, slide, reason) of every slide whose patches or features h5 records a failure;
    ``files``: cohort -> the per-slide h5 files to look at (those not written yet are skipped).
    The slide ID is the file name's stem."""
    out, seen = [], set()
    for cohort, paths in files.items():
        for path in map(Path, paths):
            if (cohort, path.stem) in seen or not path.is_file():
                continue
            try:
                status, reason = h5_status(path)
            except OSError:  # being written, or damaged: the job that owns it reports it
                continue
            if status == FAILED:
                seen.add((cohort, path.stem))
                out.append((cohort, path.stem, reason))
    return out


def failure_summary(excluded: list[tuple[str, str, str]], limit: int = 20) -> str:
    """The lines printed at the end of a run about the slides left out, or ''."""
    if not excluded:
        return ""
    lines = [f"histodistill: {len(excluded)} slides FAILED and were excluded "
             "(wsi.on_slide_error: exclude); the reports list them:"]
    lines += [f"  {cohort}/{slide}: {reason}" for cohort, slide, reason in excluded[:limit]]
    if len(excluded) > limit:
        lines.append(f"  ... and {len(excluded) - limit} more")
    return "\n".join(lines)
