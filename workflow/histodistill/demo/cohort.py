"""Write the demo cohort: slides, sheets, RNA counts and the planted ground truth.

Layout under ``out_dir``::

    slides/{slide}.tiff     pyramidal JPEG TIFFs (OpenSlide generic-tiff), mpp in the tags
    samples.tsv             slide sheet: patient, slide, path (relative to this folder)
    clinical.tsv            patient sheet: patient, time (months), event, metastasis, age,
                            grade
    rna_counts.tsv          raw counts, genes x samples (first column: gene)
    ground_truth.tsv        per patient: every programme's z, linear predictor, probabilities
    ground_truth.json       the spec: programmes, their pathways, morphologies and effects

Every random draw comes from a generator seeded by (spec.seed, stream[, index]), so a slide
can be written alone (one Snakemake job per slide) and is identical to the one written with
the whole cohort.
"""

from __future__ import annotations

import logging
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from histodistill.demo.outcomes import simulate_outcomes
from histodistill.demo.rna import choose_genes, simulate_counts
from histodistill.demo.spec import DemoPlan, DemoSpec, plan_demo
from histodistill.demo.tissue import paint_slide
from histodistill.io import write_json, write_tsv
from histodistill.rna.gmt import read_gmt
from histodistill.wsi.write import write_pyramidal_tiff

log = logging.getLogger(__name__)

SLIDES_DIR = "slides"


def latent_programmes(spec: DemoSpec, plan: DemoPlan) -> pd.DataFrame:
    """Standard-normal programme levels z (patients x programmes), stream (seed, 1)."""
    rng = np.random.default_rng([spec.seed, 1])
    names = [p.name for p in spec.programmes]
    return pd.DataFrame(rng.normal(size=(len(plan.patients), len(names))),
                        index=pd.Index(plan.patients, name="patient"), columns=names)


def slide_shape(spec: DemoSpec) -> tuple[int, int]:
    return (int(round(spec.slide_height_um / spec.mpp)), int(round(spec.slide_width_um / spec.mpp)))


def make_demo_slide(out_path: str | Path, spec: DemoSpec, slide_id: str) -> None:
    """Paint and write one slide of the cohort (its phenotype follows its patient's z)."""
    plan = plan_demo(spec)
    if slide_id not in plan.slides:
        raise ValueError(f"demo: no slide {slide_id!r} in a cohort of {spec.n_patients} "
                         f"patients with seed {spec.seed}")
    patient = plan.slides[slide_id]
    z = latent_programmes(spec, plan)
    phenotype = {p.morphology: float(z.at[patient, p.name])
                 for p in spec.programmes if p.morphology}
    index = list(plan.slides).index(slide_id)
    image, _ = paint_slide(np.random.default_rng([spec.seed, 2, index]), slide_shape(spec),
                           spec.mpp, phenotype)
    write_pyramidal_tiff(out_path, image, spec.mpp,
                         description=f"histodistill synthetic demo slide {slide_id}")
    log.info("wrote %s (%s, %s)", out_path, patient,
             ", ".join(f"{k}={v:+.2f}" for k, v in phenotype.items()))


def write_demo_tables(out_dir: str | Path, spec: DemoSpec, gmt_path: str | Path) -> DemoPlan:
    """Sheets, counts and ground truth (no slides)."""
    out = Path(out_dir)
    plan = plan_demo(spec)
    gene_sets = read_gmt(gmt_path)
    z = latent_programmes(spec, plan)
    rng = np.random.default_rng([spec.seed, 3])
    outcomes = simulate_outcomes(z, spec.programmes, spec.median_survival_months,
                                 spec.max_follow_up_months, rng,
                                 np.random.default_rng([spec.seed, 5]))
    genes = choose_genes(gene_sets, [p.pathway for p in spec.programmes], spec.n_genes, rng)
    counts = simulate_counts(genes, {p.name: gene_sets[p.pathway] for p in spec.programmes}, z,
                             rng)
    counts = counts.drop(columns=sorted(plan.rna_missing))

    write_tsv(out / "samples.tsv", pd.DataFrame(
        [{"patient": p, "slide": s, "path": f"{SLIDES_DIR}/{s}.tiff"}
         for s, p in plan.slides.items()]))
    sheet = outcomes[["time", "event", "metastasis", "age", "grade"]]
    write_tsv(out / "clinical.tsv", sheet.reset_index())
    write_tsv(out / "rna_counts.tsv", counts, index=True)
    truth = z.add_prefix("z_").join(outcomes[["linear_predictor", "metastasis_probability"]])
    truth["has_rna"] = [p not in plan.rna_missing for p in truth.index]
    write_tsv(out / "ground_truth.tsv", truth, index=True)
    write_json(out / "ground_truth.json", {
        "spec": {k: v for k, v in asdict(spec).items() if k != "programmes"},
        "programmes": [asdict(p) | {"visible": p.morphology is not None}
                       for p in spec.programmes],
        "hazard": "exponential, log hazard = sum(log_hazard_k * z_k), z_k ~ N(0, 1)",
        "binary_endpoint": "metastasis ~ Bernoulli(sigmoid(sum(binary_logit_k * z_k)))",
        "n_genes": len(genes),
        "patients_without_rna": sorted(plan.rna_missing),
    })
    log.info("demo cohort: %d patients, %d slides, %d genes, %d events", spec.n_patients,
             len(plan.slides), len(genes), int(outcomes["event"].sum()))
    return plan


def make_demo_cohort(out_dir: str | Path, spec: DemoSpec, gmt_path: str | Path,
                     workers: int = 1) -> DemoPlan:
    """The whole cohort in one call (tests, benchmarks); slides in ``workers`` processes."""
    out = Path(out_dir)
    plan = write_demo_tables(out, spec, gmt_path)
    paths = [out / SLIDES_DIR / f"{s}.tiff" for s in plan.slides]
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for fut in [pool.submit(make_demo_slide, p, spec, s)
                        for p, s in zip(paths, plan.slides, strict=True)]:
                fut.result()
    else:
        for p, s in zip(paths, plan.slides, strict=True):
            make_demo_slide(p, spec, s)
    return plan
