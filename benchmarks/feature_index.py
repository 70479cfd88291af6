"""Seconds to rebuild a cohort's feature index, with and without the digest extraction writes.

    python benchmarks/feature_index.py [--slides 100] [--patches 4000] [--dim 1024]

The index is rebuilt whenever any slide's features change. Without ``features_sha256`` (files
from before it existed, failed slides) every file is hashed whole; with it the index reads one
attribute per file. Files are written to a temporary folder (warm page cache: a cold cache on a
shared file system makes the whole-file case slower still).
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))
from histodistill.features.index import index_features  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slides", type=int, default=100)
    parser.add_argument("--patches", type=int, default=4000)
    parser.add_argument("--dim", type=int, default=1024)
    args = parser.parse_args()
    print(f"# {platform.node()}: {args.slides} slides x {args.patches} patches x {args.dim} "
          f"float32 ({args.patches * args.dim * 4 / 1e6:.0f} MB each)")
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((args.patches, args.dim), dtype=np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i in range(args.slides):
            path = Path(tmp) / f"s{i:04d}.h5"
            with h5py.File(path, "w") as f:
                f.create_dataset("features", data=feats)
                f.attrs["extractor"] = "bench"
            files.append(str(path))
        for label in ("hashing every file", "digest written by extraction"):
            start = time.perf_counter()
            index_features(files, Path(tmp) / "index.tsv")
            print(f"{label}: {time.perf_counter() - start:.2f} s")
            for path in files:
                with h5py.File(path, "a") as f:
                    f.attrs["features_sha256"] = "0" * 64


if __name__ == "__main__":
    main()
