"""Shared fixtures: a tiny demo cohort generated once per test session, real-data paths."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))  # test this checkout's package, installed or not
os.environ.setdefault("HF_HUB_OFFLINE", "1")

HALLMARK = REPO / "resources" / "genesets" / "h.all.v7.0.symbols.gmt"
SHARED = Path(os.environ.get("HISTODISTILL_SHARED_DATA", REPO.parent / "shared" / "data"))
TEST_DATA = REPO / "tests" / "data"


@pytest.fixture(scope="session")
def tiny_cohort(tmp_path_factory: pytest.TempPathFactory):
    """A 12-patient demo cohort (small slides) written once; returns (folder, spec, plan)."""
    from histodistill.demo.cohort import make_demo_cohort
    from histodistill.demo.spec import DemoSpec

    out = tmp_path_factory.mktemp("tiny_demo")
    spec = DemoSpec(n_patients=12, seed=4, rna_missing_fraction=0.2, slide_width_um=768.0,
                    slide_height_um=576.0, n_genes=1200, median_survival_months=18.0)
    plan = make_demo_cohort(out, spec, HALLMARK, workers=2)
    return out, spec, plan


def write_table(path: Path, text: str) -> Path:
    """Write a small table written with '|' for tabs (readable in test sources)."""
    path.write_text(text.replace("|", "\t"))
    return path


def shared_file(*parts: str) -> Path:
    """A file of ../shared/data, or skip the test with the reason."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real-data file {path} is absent (the shared data folder sits beside the "
                    "checkout in CI; set HISTODISTILL_SHARED_DATA to point elsewhere)")
    return path


@pytest.fixture(scope="session")
def tiny_pipeline(tiny_cohort, tmp_path_factory):
    """The tiny cohort taken through every step before training, with the package only.

    Returns a dict of paths: folds, clinical, samples, pathways, features (list).
    """
    from histodistill.features.extract import SlideJob, extract_features
    from histodistill.rna.normalise import normalise
    from histodistill.rna.pathways import score_pathways
    from histodistill.rna.table import RnaSource
    from histodistill.splits import make_splits
    from histodistill.wsi.segmentation import SegmentationParams, segment_slide
    from histodistill.wsi.tiling import TilingParams, tile_slide

    folder, _, plan = tiny_cohort
    out = tmp_path_factory.mktemp("tiny_pipeline")
    jobs = []
    for slide_id in plan.slides:
        slide = folder / "slides" / f"{slide_id}.tiff"
        segment_slide(slide, slide_id, out / f"{slide_id}.geojson", out / f"{slide_id}.png",
                      SegmentationParams())
        tile_slide(slide, slide_id, out / f"{slide_id}.geojson", out / f"{slide_id}.p.h5",
                   TilingParams(112.0, 112, 0.5))
        jobs.append(SlideJob(slide_id, str(slide), str(out / f"{slide_id}.p.h5"),
                             str(out / "features" / f"{slide_id}.h5")))
    extract_features(jobs, "resnet18_trunc", None, batch_size=32)
    normalise(RnaSource(str(folder / "rna_counts.tsv")), folder / "clinical.tsv",
              out / "n.parquet", out / "samples.tsv", out / "rna.json", out / "qc.png")
    score_pathways(out / "n.parquet", HALLMARK, folder / "clinical.tsv",
                   out / "pathways.parquet", out / "cov.tsv", out / "heatmap.png")
    make_splits(folder / "clinical.tsv", folder / "samples.tsv", out / "folds.tsv", 2, 0.25, 0)
    return {"folds": out / "folds.tsv", "clinical": folder / "clinical.tsv",
            "samples": folder / "samples.tsv", "pathways": out / "pathways.parquet",
            "coverage": out / "cov.tsv", "rna_qc": out / "qc.png",
            "rna_summary": out / "rna.json", "heatmap": out / "heatmap.png",
            "features": [j.out_h5 for j in jobs], "dir": out,
            "tissue_qc": {s: str(out / f"{s}.png") for s in plan.slides}}


@pytest.fixture(scope="session")
def tiny_models(tiny_pipeline, tmp_path_factory):
    """wsi_abmil, ghanet, its permuted twin, mope_teacher, mope and wsi_meanpool (three
    penalties tried inside each fold) trained briefly on both folds of the tiny cohort:
    model -> its two predictions.tsv (meta.json and model.pt beside each)."""
    from histodistill.training.fold import train_fold
    from histodistill.training.loop import TrainParams
    from histodistill.training.tuning import TuneParams

    p = tiny_pipeline
    params = TrainParams(epochs=2, min_epochs=1, n_bins=2, hidden=8, max_patches=16,
                         n_groups=3)
    tune = TuneParams(budget=3, space={"wsi_meanpool": {"penalty": [0.1, 1.0, 100.0]}})
    root = tmp_path_factory.mktemp("tiny_models")
    files: dict[str, list[str]] = {}
    for model in ("wsi_abmil", "ghanet", "ghanet_permuted", "mope_teacher", "mope",
                  "wsi_meanpool"):
        files[model] = []
        for fold in (0, 1):
            out = root / model / f"fold{fold}"
            teacher = root / "mope_teacher" / f"fold{fold}" if model == "mope" else None
            train_fold(model, fold, p["folds"], p["clinical"], p["samples"], p["features"],
                       p["pathways"], out, params, teacher_dir=teacher, tune=tune)
            files[model].append(str(out / "predictions.tsv"))
    return files


def rule_blocks() -> dict[str, str]:
    """Every rule of workflow/rules/*.smk: name -> its text up to the next rule. The one rule
    defined in a loop (``rule:`` with a generated name: the feature shards) is listed under
    its family's name, extract_features."""
    from histodistill.features.shards import FAMILY

    text = "\n".join(f.read_text() for f in sorted((REPO / "workflow" / "rules").glob("*.smk")))
    blocks = re.split(r"^\s*rule\b\s*", text, flags=re.MULTILINE)[1:]
    named = {b.split(":", 1)[0]: b for b in blocks if not b.startswith(":")}
    looped = [b for b in blocks if b.startswith(":")]
    assert len(looped) == 1 and FAMILY not in named, "one generated rule family expected"
    return {**named, FAMILY: looped[0]}


def rule_script(block: str) -> str | None:
    """The name of a rule's script (``scripts/{name}.py``), None for a rule without one."""
    m = re.search(r'script:\n\s+"\.\./scripts/(\w+)\.py"', block)
    return m.group(1) if m else None
