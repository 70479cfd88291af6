"""Per-slide reuse inside a shard: a re-run shard recomputes only the slides that changed.

Snakemake deletes every output of a job before it runs it again, so without help a shard
re-run because one slide is new, changed or deleted would redo all of its slides. Each
finished feature file therefore gets a second name (a hard link: no extra disk) under
``features/{extractor}/.reuse/{slide}.h5``, with a ``reuse_key`` attribute: a sha256 of
everything its result depends on

* the slide file (resolved path, size, modification time),
* the patches h5 (its bytes: the tile coordinates and geometry),
* the extractor, the weight file (path, size, modification time), seed, precision, compile,
  batch size, the device type, and the code version of the extraction step.

When a shard runs, a slide whose stored file has the same key, status ``ok`` and a
``features_sha256`` that matches its arrays again is linked back in place of recomputing it,
and the shard's log says so. Anything else (another key, a failed or damaged file, no file)
is recomputed. The store is safe to delete at any time (``rm -r .../.reuse``): the next run
then recomputes every slide of a re-run shard. Where the file system has no hard links the
store is skipped (logged) and results are recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path

import h5py

from histodistill.io import atomic_path
from histodistill.wsi.status import OK

log = logging.getLogger(__name__)
STORE = ".reuse"


def file_identity(path: str | Path | None) -> list[object] | None:
    """What identifies a file's content without reading it: resolved path, size, mtime."""
    if path is None:
        return None
    st = Path(path).stat()
    return [str(Path(path).resolve()), st.st_size, st.st_mtime_ns]


def arrays_sha256(f: h5py.File) -> str:
    """The sha256 a feature file's writer records: its features, then its coords, as bytes."""
    digest = hashlib.sha256()
    for name in ("features", "coords"):
        digest.update(f[name][:].tobytes())
    return digest.hexdigest()


class ReuseStore:
    """Finished feature files of earlier runs, keyed by what they were computed from."""

    def __init__(self, settings: Mapping[str, object]) -> None:
        self._settings = json.dumps(settings, sort_keys=True, default=str)
        self._keys: dict[str, str] = {}
        self.enabled = True

    def key(self, slide_id: str, slide_path: str, patches_h5: str) -> str:
        if slide_id not in self._keys:
            digest = hashlib.sha256(self._settings.encode())
            digest.update(json.dumps(file_identity(slide_path)).encode())
            digest.update(Path(patches_h5).read_bytes())
            self._keys[slide_id] = digest.hexdigest()
        return self._keys[slide_id]

    @staticmethod
    def stored(out_h5: str) -> Path:
        out = Path(out_h5)
        return out.parent / STORE / out.name

    def restore(self, slide_id: str, slide_path: str, patches_h5: str, out_h5: str) -> int | None:
        """Link a valid stored result to ``out_h5``; its number of tiles, or None."""
        stored = self.stored(out_h5)
        if not stored.is_file():
            return None
        key = self.key(slide_id, slide_path, patches_h5)
        try:
            with h5py.File(stored, "r") as f:
                valid = (f.attrs.get("reuse_key") == key and f.attrs.get("status") == OK
                         and f.attrs.get("features_sha256") == arrays_sha256(f))
                n = len(f["features"])
        except (OSError, KeyError) as exc:
            log.warning("%s: stored result %s unreadable (%s); recomputing", slide_id, stored, exc)
            return None
        if not valid:
            log.info("%s: stored result is for other inputs or settings; recomputing", slide_id)
            return None
        try:
            with atomic_path(out_h5) as tmp:
                os.link(stored, tmp)
        except OSError as exc:
            log.warning("%s: cannot link %s (%s); recomputing", slide_id, stored, exc)
            return None
        os.utime(out_h5)  # newer than its inputs, like a freshly written file
        log.info("%s: %d tiles restored from %s (same slide, tiles, model, settings and code)",
                 slide_id, n, stored)
        return n

    def keep(self, out_h5: str) -> None:
        """Give a just-written feature file its second name in the store."""
        if not self.enabled:
            return
        stored = self.stored(out_h5)
        try:
            with atomic_path(stored) as tmp:
                os.link(out_h5, tmp)
        except OSError as exc:
            self.enabled = False
            log.warning("no reuse store for this job: cannot hard-link %s into %s (%s); a "
                        "re-run of this shard will recompute its slides", out_h5,
                        stored.parent, exc)
