"""Hashes and versions that identify how an output was made.

``code_hash`` is passed as a rule param so that editing one step's code re-runs exactly that
step's outputs (Snakemake's own code trigger only sees the thin script, not the package).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
from pathlib import Path

_PACKAGE_ROOT = Path(__file__).resolve().parent


def code_hash(*parts: str) -> str:
    """sha256 (first 16 hex digits) of the package sources under ``parts``.

    Each part is a module file (``"io.py"``) or a sub-package folder (``"wsi"``) relative to
    the package root. Files are hashed in sorted order with their relative names, so a rename
    changes the hash too.
    """
    digest = hashlib.sha256()
    for part in sorted(set(parts)):
        target = _PACKAGE_ROOT / part
        if target.is_dir():
            files = sorted(p for p in target.rglob("*") if p.suffix in {".py", ".j2"})
        elif target.is_file():
            files = [target]
        else:
            raise FileNotFoundError(f"code_hash: no module or package {part!r} in {_PACKAGE_ROOT}")
        for f in files:
            digest.update(str(f.relative_to(_PACKAGE_ROOT)).encode())
            digest.update(f.read_bytes())
    return digest.hexdigest()[:16]


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Full sha256 hex digest of a file, read in chunks (weights can be several GB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def versions(*distributions: str) -> dict[str, str]:
    """Installed versions of the named distributions ("not installed" when absent)."""
    out: dict[str, str] = {}
    for name in distributions:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
