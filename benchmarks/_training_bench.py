"""Shared by the training benchmarks: write a cohort as the workflow's files, train folds."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from histodistill.evaluation.metrics import harrell_cindex  # noqa: E402


def write_sheets(out: Path, clinical: pd.DataFrame, slides: dict[str, str]) -> None:
    """clinical (index patient; time, event, ...) and slide -> patient as the two sheets."""
    out.mkdir(parents=True, exist_ok=True)
    clinical.rename_axis("patient").reset_index().to_csv(out / "clinical.tsv", sep="\t",
                                                         index=False)
    pd.DataFrame({"patient": list(slides.values()), "slide": list(slides),
                  "path": [f"{s}.svs" for s in slides]}).to_csv(out / "samples.tsv", sep="\t",
                                                                index=False)


def fold_cindex(pred_files: list[Path]) -> tuple[float, float, list[float]]:
    """Pooled out-of-fold c-index, and the mean and values of the per-fold c-indices."""
    preds = pd.concat([pd.read_csv(f, sep="\t", dtype={"patient": str}) for f in pred_files])
    test = preds[preds["role"] == "test"]
    per_fold = [harrell_cindex(f["time"].to_numpy(), f["event"].to_numpy(), f["risk"].to_numpy())
                for _, f in test.groupby("fold")]
    pooled = harrell_cindex(test["time"].to_numpy(), test["event"].to_numpy(),
                            test["risk"].to_numpy())
    return pooled, float(np.mean(per_fold)), per_fold


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
