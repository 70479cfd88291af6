"""rna_snn on real TCGA molecular tables with MCAT's published 5-fold splits.

Data (../shared/data, GPL-3.0, never copied into the repo): MCAT's signature tables for BLCA and
LUAD (``*_rnaseq`` z-scores, ~2,800 genes), PORPOISE's for BRCA and GBMLGG (~1,550 genes; the
MCAT signature tables of those two are not public), MCAT's ``splits_{k}.csv`` (column ``train``
= training patients, ``val`` = the held-out fold MCAT reports on). Patients are de-duplicated
(one row per case); ``censorship`` 1 = censored.

Our run: the histodistill training step (``train_fold('rna_snn', ...)``) with the gene z-scores
as the privileged vector (standardised on each training fold), an inner validation split of 20%
of each MCAT training fold for early stopping (MCAT had none), 4 time bins at the training-fold
event quartiles. Printed: per-fold mean c-index (MCAT's convention) and the pooled c-index.

    python benchmarks/tcga_rna_snn.py [--cohorts blca luad] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _training_bench import fold_cindex, write_sheets

from histodistill.training.fold import train_fold
from histodistill.training.loop import TrainParams

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "tcga"
TABLES = {"blca": "mcat/tcga_blca_all_clean.sig.csv.gz",
          "brca": "porpoise/tcga_brca_all_clean.mutsig.csv.gz",
          "gbmlgg": "porpoise/tcga_gbmlgg_all_clean.mutsig.csv.gz",
          "luad": "mcat/tcga_luad_all_clean.sig.csv.gz"}
MCAT_SNN = {"blca": 0.541, "brca": 0.466, "gbmlgg": 0.598, "luad": 0.539}
PARAMS = dict(epochs=20, min_epochs=5, patience=5, lr=2e-4, weight_decay=1e-4,
              batch_patients=32, n_bins=4, hidden=256, dropout=0.25)


def load(cohort: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    df = pd.read_csv(SHARED / TABLES[cohort], index_col=0, low_memory=False)
    df = df.drop_duplicates("case_id").set_index("case_id")
    rna = df.filter(regex="_rnaseq$").astype(float)
    clinical = pd.DataFrame({"time": df["survival_months"].clip(lower=1e-3),
                             "event": 1 - df["censorship"].astype(int)})
    return clinical, rna


def folds_table(cohort: str, patients: set[str], seed: int) -> pd.DataFrame:
    from sklearn.model_selection import train_test_split

    rows = []
    for k in range(5):
        split = pd.read_csv(SHARED / "mcat" / "splits" / "5foldcv" / f"tcga_{cohort}" /
                            f"splits_{k}.csv")
        train = sorted(set(split["train"].dropna()) & patients)
        test = sorted(set(split["val"].dropna()) & patients)
        tr, va = train_test_split(train, test_size=0.2, random_state=seed + k)
        rows += [(k, p, "train") for p in tr] + [(k, p, "val") for p in va]
        rows += [(k, p, "test") for p in test]
    return pd.DataFrame(rows, columns=["fold", "patient", "role"])


def run(cohort: str, seed: int, work: Path) -> dict[str, float]:
    clinical, rna = load(cohort)
    out = work / f"{cohort}_s{seed}"
    write_sheets(out, clinical, {f"{p}-s": p for p in clinical.index})
    rna.rename_axis("patient").to_parquet(out / "pathways.parquet")
    folds = folds_table(cohort, set(clinical.index), seed)
    folds.to_csv(out / "folds.tsv", sep="\t", index=False)
    params = TrainParams(**PARAMS, seed=seed)
    t0 = time.perf_counter()
    files = []
    for k in range(5):
        d = out / f"fold{k}"
        train_fold("rna_snn", k, out / "folds.tsv", out / "clinical.tsv", out / "samples.tsv",
                   [], out / "pathways.parquet", d, params)
        files.append(d / "predictions.tsv")
    pooled, mean, per_fold = fold_cindex(files)
    return {"patients": len(clinical), "events": int(clinical["event"].sum()),
            "genes": rna.shape[1], "pooled": pooled, "fold_mean": mean,
            "fold_sd": float(np.std(per_fold, ddof=1)), "seconds": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cohorts", nargs="+", default=list(TABLES))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    args = ap.parse_args()
    print("| cohort | patients (events) | genes | ours: fold-mean c-index, mean +- SD over "
          "seeds | ours: pooled | MCAT SNN (published) | s per 5 folds |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for cohort in args.cohorts:
            res = [run(cohort, s, Path(tmp)) for s in args.seeds]
            fm = [r["fold_mean"] for r in res]
            po = [r["pooled"] for r in res]
            r0 = res[0]
            print(f"| {cohort.upper()} | {r0['patients']} ({r0['events']}) | {r0['genes']} | "
                  f"{np.mean(fm):.3f} +- {np.std(fm, ddof=1) if len(fm) > 1 else 0:.3f} "
                  f"({', '.join(f'{v:.3f}' for v in fm)}) | {np.mean(po):.3f} | "
                  f"{MCAT_SNN[cohort]:.3f} | {np.mean([r['seconds'] for r in res]):.0f} |",
                  flush=True)


if __name__ == "__main__":
    main()
