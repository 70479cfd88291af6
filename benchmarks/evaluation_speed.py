"""Seconds to evaluate one model (every metric, 1,000 bootstrap resamples) by cohort size.

    python benchmarks/evaluation_speed.py --patients 40 400 1000

Synthetic 5-fold out-of-fold predictions with 4-interval survival curves and meta.json beside
each fold, as the train rule writes them; times ``evaluate`` for one model plus the
reference (so the paired comparison is included), in one process.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from histodistill.evaluation.evaluate import EvalParams, evaluate


def write_model(root: Path, model: str, n: int, rng: np.random.Generator) -> list[str]:
    files = []
    x = rng.normal(size=n)
    time_ = np.minimum(rng.exponential(30 * np.exp(-0.5 * x)), rng.uniform(5, 120, n))
    event = (rng.uniform(size=n) < 0.6).astype(int)
    fold = np.arange(n) % 5
    for k in range(5):
        hazards = 1 / (1 + np.exp(-(x[:, None] + rng.normal(0, 1, (n, 4)) - 1)))
        surv = np.cumprod(1 - hazards, axis=1)
        df = pd.DataFrame({"fold": k, "model": model, "patient": [f"p{i}" for i in range(n)],
                           "time": time_, "event": event, "risk": -surv.sum(axis=1),
                           **{f"surv_{j}": surv[:, j] for j in range(4)},
                           "role": np.where(fold == k, "test", "train")})
        d = root / model / f"fold{k}"
        d.mkdir(parents=True)
        df.to_csv(d / "predictions.tsv", sep="\t", index=False)
        (d / "meta.json").write_text(json.dumps({"fold": k, "bin_cuts": [12.0, 24.0, 48.0]}))
        files.append(str(d / "predictions.tsv"))
    return files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, nargs="+", default=[40, 400, 1000])
    ap.add_argument("--bootstrap", type=int, default=1000)
    args = ap.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {platform.system()}")
    print("| patients | seconds for one model (two models with the paired comparison) |")
    print("|---|---|")
    for n in args.patients:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            rng = np.random.default_rng(n)
            preds = {m: write_model(root, m, n, rng) for m in ("wsi_abmil", "student")}
            km = {m: str(root / f"km_{m}.png") for m in preds}
            start = time.perf_counter()
            evaluate({"student": preds["student"]}, root / "one.tsv", root / "c1.png",
                     {"student": km["student"]}, EvalParams(n_bootstrap=args.bootstrap))
            one = time.perf_counter() - start
            start = time.perf_counter()
            evaluate(preds, root / "m.tsv", root / "c.png", km,
                     EvalParams(n_bootstrap=args.bootstrap))
            both = time.perf_counter() - start
        print(f"| {n} | {one:.1f} (two models with the comparison: {both:.1f}) |")


if __name__ == "__main__":
    main()
