"""Training time per fold and peak memory at cohort scale (issue 6, evidence 3).

A 500-patient cohort with 15,000 patches x 1,024 features per slide (float32: 61 MB per
slide, 30 GB for the cohort) is written as ``--distinct`` real h5 files in extraction's chunk
layout, and every patient's slide is a symbolic link to one of them (disk space; the training
step opens each patient's own path and cannot tell). Labels and pathway scores are random, so
the c-index is meaningless: this measures cost only. One fold of each model is trained with
the workflow's defaults (bags capped at ``max_patches`` in training, every patch at inference,
feature cache bounded by ``cache_mb``) and its wall time and the process's peak RSS are
printed.

    python benchmarks/training_scale.py [--models wsi_abmil mope] [--epochs 5] [--device cuda]
        [--cache-mb 0]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
from _training_bench import peak_rss_mb, write_sheets

from histodistill.features.rows import feature_chunks
from histodistill.splits import make_splits
from histodistill.training.fold import train_fold
from histodistill.training.loop import TrainParams

TEACHER = {"student_kd": "teacher_fusion", "mope": "mope_teacher"}


def write_cohort(out: Path, n_patients: int, n_patches: int, dim: int, distinct: int,
                 n_pathways: int) -> list[str]:
    rng = np.random.default_rng(0)
    patients = [f"p{i:04d}" for i in range(n_patients)]
    clinical = pd.DataFrame({"time": rng.uniform(1, 120, n_patients),
                             "event": rng.integers(0, 2, n_patients)},
                            index=pd.Index(patients, name="patient"))
    write_sheets(out, clinical, {f"{p}-s1": p for p in patients})
    pd.DataFrame(rng.normal(size=(n_patients, n_pathways)), index=pd.Index(patients,
                 name="patient"), columns=[f"P{k}" for k in range(n_pathways)]).to_parquet(
        out / "pathways.parquet")
    (out / "features").mkdir()
    for j in range(distinct):
        with h5py.File(out / f"distinct{j}.h5", "w") as f:
            f.create_dataset("features", data=rng.normal(size=(n_patches, dim))
                             .astype(np.float32), chunks=feature_chunks(n_patches, dim))
            f.attrs.update(extractor="synthetic", weights_sha256="none", random_weights=True,
                           status="ok")
    paths = []
    for i, p in enumerate(patients):
        link = out / "features" / f"{p}-s1.h5"
        link.symlink_to(out / f"distinct{i % distinct}.h5")
        paths.append(str(link))
    make_splits(out / "clinical.tsv", out / "samples.tsv", out / "folds.tsv", 5, 0.2, 0)
    return paths


def fit_one(job: tuple[str, Path, list[str], int, str, float]) -> tuple[float, float, str]:
    """Train fold 0 of one model in a fresh process: (seconds, peak RSS in MB, peak CUDA
    memory allocated in MB or "-" when it ran on the CPU)."""
    import torch

    model, out, feats, epochs, device, cache_mb = job
    params = TrainParams(epochs=epochs, min_epochs=epochs, patience=epochs, device=device,
                         cache_mb=cache_mb)
    t0 = time.perf_counter()
    teacher = out / TEACHER[model] if model in TEACHER else None
    train_fold(model, 0, out / "folds.tsv", out / "clinical.tsv", out / "samples.tsv", feats,
               out / "pathways.parquet", out / model, params, teacher_dir=teacher)
    gpu = (f"{torch.cuda.max_memory_allocated() / 2**20:.0f}" if torch.cuda.is_initialized()
           else "-")
    return time.perf_counter() - t0, peak_rss_mb(), gpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=500)
    ap.add_argument("--patches", type=int, default=15000)
    ap.add_argument("--dim", type=int, default=1024)
    ap.add_argument("--distinct", type=int, default=8)
    ap.add_argument("--pathways", type=int, default=50)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--models", nargs="+", default=["wsi_abmil", "teacher_fusion",
                                                    "student_kd", "ghanet", "mope_teacher",
                                                    "mope", "bidistill"])
    ap.add_argument("--root", type=Path, default=None)
    ap.add_argument("--device", default="cpu", help="train.device: cpu | auto | cuda")
    ap.add_argument("--cache-mb", type=float, default=TrainParams.cache_mb,
                    help="train.cache_mb: patch features kept in memory")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.root) as tmp:
        out = Path(tmp)
        t0 = time.perf_counter()
        feats = write_cohort(out, args.patients, args.patches, args.dim, args.distinct,
                             args.pathways)
        print(f"cohort written in {time.perf_counter() - t0:.0f} s", flush=True)
        print("| model | epochs | s per fold | s per epoch (incl. prediction) | peak RSS MB | "
              "peak CUDA MB |")
        print("|---|---|---|---|---|---|")
        ctx = mp.get_context("spawn")
        for model in args.models:
            with ctx.Pool(1) as pool:
                dt, rss, gpu = pool.apply(fit_one, ((model, out, feats, args.epochs,
                                                     args.device, args.cache_mb),))
            print(f"| {model} | {args.epochs} | {dt:.0f} | {dt / args.epochs:.1f} | "
                  f"{rss:.0f} | {gpu} |", flush=True)


if __name__ == "__main__":
    main()
