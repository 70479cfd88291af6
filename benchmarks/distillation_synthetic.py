"""Evidence that distillation helps where it should: the demo generator at cohort scale.

The demo generator's planted *partial observability*: five latent programmes drive RNA (their
Hallmark gene sets) and outcome; three are visible in histology (proliferation -> E2F targets,
stroma -> EMT, hypoxia -> hypoxia), two move only the hazard (interferon-gamma, oxidative
phosphorylation). Cohorts of ``--patients`` patients per seed use the generator's own
programmes, outcomes, RNA counts, DESeq2 VST and ssGSEA (``write_demo_tables``, ``normalise``,
``score_pathways``) and the real training step (``train_fold``) for every model and fold.

One shortcut, for time on a 2-core machine: patch *features* are simulated in feature space
instead of rendering slides and running a CNN (rendering + extraction would take ~45 min per
300-patient seed here). Each slide gets 150-250 patches of 64 dims: tumour / stroma / other
patches around fixed centroids with unit noise; proliferation shifts tumour patches along one
direction (0.6 SD per SD), stroma raises the stroma share and shifts stroma patches (0.5),
hypoxia shifts all patches (0.4); the two hazard-only programmes leave no trace.

``--noise`` scales the per-patch noise (default 1.0): at 2.0 each programme's shift is half as
large against the noise, so histology carries the same information less accessibly - the
regime where privileged information is expected to help (learning using privileged
information: the teacher's signal is a less noisy target than censored survival).

Printed: pooled out-of-fold c-index per model (mean and SD over seeds), two **oracle**
c-indices from the generator's true programme levels - the true log hazard (the ceiling of any
model) and its histology-visible part (the ceiling of any histology-only model: a student can
at most close the gap between ``wsi_abmil`` and it) - the share of MoPE's pathway usage on the
three morphology-linked pathways, and seconds per fit.

``mope_recon`` is ``mope`` trained with ``usage_target: reconstructible`` (the KL's target is
the teacher's usage re-weighted by each pathway's reconstructibility). For the teacher and both
students, where the usage goes is measured against the generator's truth: per pathway, the R^2
of its score on the three visible programmes' levels (R2_vis) and on the two hidden ones
(R2_hid); the usage-weighted mean of each, beside the unweighted mean (uniform usage). Every
Hallmark score is partly a mix of the programmes (ssGSEA ranks genes within a sample, so a
programme that raises its genes lowers the rest), so these say more than the share on the
three planted pathways alone.

``--setting localised`` (a design of ours, fixed before its results were seen): the programmes
leave the tumour / stroma / other patches alone and shift only *hotspot* patches (about 10% of
each bag, at their own centroid) along their directions (1.5, 1.2 and 1.0 per SD for
proliferation, stroma and hypoxia); the other patches carry a per-slide nuisance shift along the
same directions (SD 0.5), so the bag mean mixes a diluted signal with a larger nuisance, and a
model must find the hotspots to read the programmes: the regime where attention should beat
mean pooling.

``--budget`` candidates per model and fold are tried inside the fold (``train_fold``'s
``tune``: candidate 0 is the parameters below, the rest draws from ``SPACE``), chosen on the
inner validation split; every model gets the same budget. Controls are models like any other:
``{student}_permuted`` (the privileged vector shuffled across the fold's patients; its teacher
is the teacher's permuted twin) and ``student_kd_self`` (KD from ``wsi_abmil``). For each
student the script prints its pooled out-of-fold c-index minus ``wsi_abmil``'s, minus
``wsi_meanpool``'s and minus its controls', per seed with a paired bootstrap 95% CI over
patients (1000 resamples), and the mean +- SD over seeds.

    python benchmarks/distillation_synthetic.py [--patients 300] [--seeds 0 1 2] [--workers 2]
        [--noise 1.0] [--setting diffuse|localised] [--budget 1] [--models ...]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
from _training_bench import fold_cindex

from histodistill.demo.spec import DemoSpec
from histodistill.models.catalog import CATALOG, with_teachers
from histodistill.training.task import Task

REPO = Path(__file__).resolve().parents[1]
HALLMARK = REPO / "resources" / "genesets" / "h.all.v7.0.symbols.gmt"
MODELS = ["rna_snn", "wsi_meanpool", "wsi_abmil", "teacher_fusion", "student_kd", "ghanet",
          "mope_teacher", "mope", "mope_recon", "bidistill", "teacher_fusion_permuted",
          "student_kd_permuted", "student_kd_self", "ghanet_permuted", "mope_teacher_permuted",
          "mope_permuted", "bidistill_permuted"]
VARIANT = {"mope_recon": ("mope", {"usage_target": "reconstructible"})}  # name: (model, params)
STUDENTS = ["student_kd", "ghanet", "mope", "bidistill"]
# the search space inside the fold (``--budget`` > 1), fixed before any tuned run
SPACE = {
    "common": {"lr": [3e-4, 1e-3, 3e-3], "weight_decay": [1e-5, 1e-4, 1e-3],
               "dropout": [0.1, 0.25, 0.5]},
    "wsi_meanpool": {"penalty": [0.3, 1.0, 3.0, 10.0, 30.0, 100.0, 300.0],
                     "pooling": ["mean", "mean_max"]},
    "student_kd": {"kd_weight": [0.5, 1.0, 2.0], "kd_temperature": [1.0, 2.0, 4.0]},
    "ghanet": {"recon_weight": [0.1, 0.3, 1.0], "top_ratio": [0.1, 0.2, 0.4]},
    "mope": {"usage_weight": [0.5, 1.0, 2.0], "expert_weight": [0.5, 1.0, 2.0]},
    "bidistill": {"missing_rate": [0.3, 0.5, 0.7], "feature_weight": [0.5, 1.0, 2.0]},
}
USAGE_MODELS = ["mope_teacher", "mope", "mope_recon"]
VISIBLE = ["HALLMARK_E2F_TARGETS", "HALLMARK_EPITHELIAL_MESENCHYMAL_TRANSITION",
           "HALLMARK_HYPOXIA"]
PARAMS = dict(epochs=25, min_epochs=5, patience=8, lr=1e-3, batch_patients=4, n_bins=4,
              hidden=64, max_patches=256)
DIM = 64


def simulate_features(z: pd.Series, rng: np.random.Generator, axes: np.ndarray,
                      noise: float = 1.0, setting: str = "diffuse") -> np.ndarray:
    centroids, d_prolif, d_stroma, d_hypoxia = axes[:3] * 1.5, axes[3], axes[4], axes[5]
    n = int(rng.integers(150, 251))
    if setting == "localised":
        return _localised(z, rng, centroids, axes[3:6], n, noise)
    p_stroma = 1 / (1 + np.exp(-(np.log(0.3 / 0.7) + 0.8 * z["stroma"])))
    p = np.array([0.7 * (1 - p_stroma), p_stroma, 0.3 * (1 - p_stroma)])
    kind = rng.choice(3, size=n, p=p / p.sum())
    x = centroids[kind] + noise * rng.normal(size=(n, DIM))
    x[kind == 0] += 0.6 * z["proliferation"] * d_prolif
    x[kind == 1] += 0.5 * z["stroma"] * d_stroma
    x += 0.4 * z["hypoxia"] * d_hypoxia
    return x.astype(np.float32)


def _localised(z: pd.Series, rng: np.random.Generator, centroids: np.ndarray,
               directions: np.ndarray, n: int, noise: float) -> np.ndarray:
    """Hotspot patches (~10%) carry the programmes; the rest a per-slide nuisance shift."""
    hot = rng.random(n) < rng.uniform(0.06, 0.14)
    kind = rng.choice(3, size=n, p=[0.5, 0.3, 0.2])
    hot_centre = -centroids.sum(axis=0) / np.sqrt(3)
    x = np.where(hot[:, None], hot_centre, centroids[kind]) + noise * rng.normal(size=(n, DIM))
    signal = np.array([1.5 * z["proliferation"], 1.2 * z["stroma"], 1.0 * z["hypoxia"]])
    nuisance = 0.5 * rng.normal(size=3)
    x[hot] += signal @ directions
    x[~hot] += nuisance @ directions
    return x.astype(np.float32)


def cohort_spec(seed: int, n_patients: int) -> DemoSpec:
    return DemoSpec(n_patients=n_patients, seed=seed, rna_missing_fraction=0.1,
                    second_slide_fraction=0.15)


def true_programmes(spec: DemoSpec) -> pd.DataFrame:
    """The generator's programme levels z (patients x programmes) of a cohort."""
    from histodistill.demo.cohort import latent_programmes
    from histodistill.demo.spec import plan_demo

    return latent_programmes(spec, plan_demo(spec))


def make_cohort(seed: int, n_patients: int, out: Path, noise: float = 1.0,
                setting: str = "diffuse") -> None:
    from histodistill.demo.cohort import latent_programmes, write_demo_tables
    from histodistill.rna.normalise import normalise
    from histodistill.rna.pathways import score_pathways
    from histodistill.rna.table import RnaSource
    from histodistill.splits import make_splits

    spec = cohort_spec(seed, n_patients)
    plan = write_demo_tables(out, spec, HALLMARK)
    z = latent_programmes(spec, plan)
    rng = np.random.default_rng([seed, 77])
    axes = np.linalg.qr(rng.normal(size=(DIM, 6)))[0].T * np.sqrt(DIM) / 4
    (out / "features").mkdir(exist_ok=True)
    for slide, patient in plan.slides.items():
        with h5py.File(out / "features" / f"{slide}.h5", "w") as f:
            f["features"] = simulate_features(z.loc[patient], rng, axes, noise, setting)
            f.attrs.update(extractor="synthetic", weights_sha256="none", random_weights=False,
                           status="ok", slide_id=slide)
    normalise(RnaSource(str(out / "rna_counts.tsv")), out / "clinical.tsv", out / "n.parquet",
              out / "rna_samples.tsv", out / "rna.json", out / "qc.png")
    score_pathways(out / "n.parquet", HALLMARK, out / "clinical.tsv", out / "pathways.parquet",
                   out / "coverage.tsv", out / "heatmap.png")
    make_splits(out / "clinical.tsv", out / "samples.tsv", out / "folds.tsv", 5, 0.2, seed)


def train_one_fold(job: tuple[Path, int, int, list[str], int]) -> dict[str, float]:
    import torch

    from histodistill.training.fold import train_fold
    from histodistill.training.loop import TrainParams
    from histodistill.training.tuning import TuneParams

    torch.set_num_threads(1)
    out, seed, fold, models, budget = job
    feats = sorted(str(p) for p in (out / "features").glob("*.h5"))
    tune = TuneParams(budget=budget, seed=seed, space=SPACE)
    seconds = {}
    for model in models:
        t0 = time.perf_counter()
        name, extra = VARIANT.get(model, (model, {}))
        teacher = CATALOG[name].teacher
        train_fold(name, fold, out / "folds.tsv", out / "clinical.tsv", out / "samples.tsv",
                   feats, out / "pathways.parquet", out / model / f"fold{fold}",
                   TrainParams(**PARAMS, **extra, seed=seed),
                   teacher_dir=out / teacher / f"fold{fold}" if teacher else None, tune=tune)
        seconds[model] = time.perf_counter() - t0
    return seconds


def paired_difference(out: Path, a: str, b: str) -> tuple[float, float, float]:
    """Pooled out-of-fold c-index of ``a`` minus ``b`` on the patients both predicted, with a
    paired bootstrap 95% CI over patients."""
    from histodistill.evaluation.evaluate import headline_stat
    from histodistill.evaluation.metrics import paired_bootstrap

    def test(model: str) -> pd.DataFrame:
        preds = pd.concat(pd.read_csv(out / model / f"fold{k}" / "predictions.tsv", sep="\t",
                                      dtype={"patient": str}) for k in range(5))
        return preds[preds["role"] == "test"].set_index("patient")

    ta, tb = test(a), test(b)
    common = sorted(set(ta.index) & set(tb.index))
    sa = headline_stat(Task(), ta.loc[common].reset_index())
    sb = headline_stat(Task(), tb.loc[common].reset_index())
    lo, hi, _ = paired_bootstrap(sa, sb, len(common), 1000, 0)
    idx = np.arange(len(common))
    return sa(idx) - sb(idx), lo, hi


def comparisons(models: list[str]) -> list[tuple[str, str]]:
    """(student, baseline or control) pairs to report, for the students that were run."""
    pairs = []
    for s in STUDENTS:
        if s in models:
            pairs += [(s, b) for b in ("wsi_abmil", "wsi_meanpool", f"{s}_permuted") +
                      (("student_kd_self",) if s == "student_kd" else ()) if b in models]
    return pairs


def oracle_cindex(out: Path, spec: DemoSpec, z: pd.DataFrame) -> tuple[float, float]:
    """c-index of the true log hazard, and of its histology-visible part, over the cohort."""
    from histodistill.evaluation.metrics import harrell_cindex

    clinical = pd.read_csv(out / "clinical.tsv", sep="\t", index_col=0, dtype={0: str})
    t, e = clinical.loc[z.index, "time"].to_numpy(), clinical.loc[z.index, "event"].to_numpy()
    full = sum(p.log_hazard * z[p.name] for p in spec.programmes)
    visible = sum(p.log_hazard * z[p.name] for p in spec.programmes if p.morphology)
    return harrell_cindex(t, e, full.to_numpy()), harrell_cindex(t, e, visible.to_numpy())


def programme_r2(out: Path, spec: DemoSpec, z: pd.DataFrame) -> pd.DataFrame:
    """Per pathway (rows): R^2 of its score on the visible / hidden programmes' true levels,
    and whether it is one of the three planted visible pathways (columns vis, hid, planted)."""
    scores = pd.read_parquet(out / "pathways.parquet").select_dtypes("number")
    y = scores.to_numpy()
    r2 = {}
    for key, visible in (("vis", True), ("hid", False)):
        names = [p.name for p in spec.programmes if (p.morphology is not None) == visible]
        x = np.column_stack([np.ones(len(scores)), z.loc[scores.index, names].to_numpy()])
        resid = y - x @ np.linalg.lstsq(x, y, rcond=None)[0]
        r2[key] = 1 - (resid ** 2).sum(axis=0) / ((y - y.mean(axis=0)) ** 2).sum(axis=0)
    return pd.DataFrame(r2, index=scores.columns).assign(planted=scores.columns.isin(VISIBLE))


def usage_profile(out: Path, model: str, truth: pd.DataFrame) -> dict[str, float]:
    """Mean test usage on the planted pathways, and usage-weighted R2_vis / R2_hid."""
    preds = pd.concat(pd.read_csv(out / model / f"fold{k}" / "predictions.tsv", sep="\t")
                      for k in range(5))
    usage = preds[preds["role"] == "test"].filter(like="usage:").mean()
    usage.index = usage.index.str.removeprefix("usage:")
    t = truth.loc[usage.index]
    return {"planted": float(usage[t["planted"]].sum()), "vis": float(usage @ t["vis"]),
            "hid": float(usage @ t["hid"])}


def _mean_sd(v: list[float]) -> str:
    return f"{np.mean(v):.3f} +- {np.std(v, ddof=1) if len(v) > 1 else 0:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--patients", type=int, default=300)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--noise", type=float, default=1.0, help="per-patch noise SD (1 = default)")
    ap.add_argument("--setting", choices=["diffuse", "localised"], default="diffuse")
    ap.add_argument("--budget", type=int, default=1, help="candidates per model and fold")
    ap.add_argument("--models", nargs="+", choices=MODELS, default=MODELS,
                    help="a subset (teachers are added); default: all")
    ap.add_argument("--keep", type=Path, default=None, help="write cohorts here (else a tmp dir)")
    args = ap.parse_args()
    teachers = set(with_teachers([VARIANT.get(m, (m,))[0] for m in args.models]))
    models = [m for m in MODELS if m in args.models or m in teachers]
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        results: dict[str, list[float]] = {m: [] for m in models}
        seconds: dict[str, list[float]] = {m: [] for m in models}
        usage: dict[str, list[dict[str, float]]] = {m: [] for m in USAGE_MODELS if m in models}
        uniform, oracles = [], []
        diffs: dict[tuple[str, str], list[tuple[float, float, float]]] = {}
        for seed in args.seeds:
            out = root / f"seed{seed}"
            t0 = time.perf_counter()
            make_cohort(seed, args.patients, out, args.noise, args.setting)
            print(f"seed {seed}: cohort written in {time.perf_counter() - t0:.0f} s", flush=True)
            with Pool(args.workers) as pool:
                for sec in pool.map(train_one_fold, [(out, seed, k, models, args.budget)
                                                    for k in range(5)]):
                    for m, v in sec.items():
                        seconds[m].append(v)
            for m in models:
                pooled, _, _ = fold_cindex([out / m / f"fold{k}" / "predictions.tsv"
                                            for k in range(5)])
                results[m].append(pooled)
            spec = cohort_spec(seed, args.patients)
            z = true_programmes(spec)
            truth = programme_r2(out, spec, z)
            uniform.append({"planted": truth["planted"].mean(), "vis": truth["vis"].mean(),
                            "hid": truth["hid"].mean()})
            for m in usage:
                usage[m].append(usage_profile(out, m, truth))
            oracles.append(oracle_cindex(out, spec, z))
            for a, b in comparisons(models):
                diffs.setdefault((a, b), []).append(paired_difference(out, a, b))
            print(json.dumps({m: round(v[-1], 4) for m, v in results.items()}), flush=True)
        print(f"\n{args.patients} patients, seeds {args.seeds}, 5-fold CV, noise {args.noise}, "
              f"setting {args.setting}, tuning budget {args.budget}")
        print("| model | pooled OOF c-index, mean +- SD over seeds | per seed | s per fit |")
        print("|---|---|---|---|")
        for m in models:
            v = results[m]
            print(f"| {m} | {_mean_sd(v)} | {', '.join(f'{x:.3f}' for x in v)} | "
                  f"{np.mean(seconds[m]):.1f} |")
        for i, name in enumerate(("oracle: true log hazard", "oracle: its visible part")):
            v = [o[i] for o in oracles]
            print(f"| {name} | {_mean_sd(v)} | {', '.join(f'{x:.3f}' for x in v)} | |")
        if diffs:
            print("\n| student - other | mean +- SD over seeds | per seed [paired 95% CI] |")
            print("|---|---|---|")
            for (a, b), v in diffs.items():
                cells = ", ".join(f"{d:+.3f} [{lo:+.3f}, {hi:+.3f}]" for d, lo, hi in v)
                print(f"| {a} - {b} | {_mean_sd([d for d, _, _ in v])} | {cells} |")
        if usage:
            print("\nWhere MoPE's usage goes (mean +- SD over seeds; per seed in brackets)")
            print("| usage of | share on the 3 planted pathways | usage-weighted R2_vis | "
                  "usage-weighted R2_hid |")
            print("|---|---|---|---|")
            for m, rows in [("uniform", uniform), *usage.items()]:
                cells = [f"{_mean_sd([r[k] for r in rows])} "
                         f"({', '.join(f'{r[k]:.3f}' for r in rows)})"
                         for k in ("planted", "vis", "hid")]
                print(f"| {m} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
