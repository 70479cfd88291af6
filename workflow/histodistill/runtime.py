"""The runtime frame shared by every rule script: log file, threads, seeds, clean failure.

Scripts do::

    with rule_context(snakemake.log[0], threads=snakemake.threads, seed=...):
        package_function(...)

Any exception is written with its traceback to the rule's log (so the user finds the reason
next to the job) and re-raised, so Snakemake marks the job failed and removes its outputs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def rule_context(log_path: str | os.PathLike[str], threads: int = 1,
                 seed: int | None = None) -> Iterator[logging.Logger]:
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter(_FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    log = logging.getLogger("histodistill")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach a model hub at run time
    set_threads(threads)
    if seed is not None:
        seed_everything(seed)
    try:
        yield log
    except Exception:
        log.exception("failed")
        raise
    finally:
        root.removeHandler(handler)
        handler.close()


def set_threads(threads: int) -> None:
    """Bound every thread pool to the job's share of cores (Snakemake's ``threads``)."""
    threads = max(1, int(threads))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
    try:
        import cv2

        cv2.setNumThreads(threads)
    except ImportError:  # pragma: no cover - cv2 is a hard dependency
        pass


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    if "torch" in sys.modules:
        sys.modules["torch"].manual_seed(seed)
