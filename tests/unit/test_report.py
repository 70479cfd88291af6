"""The HTML report is one self-contained file that says when weights were random."""

from __future__ import annotations

import re

import yaml

from conftest import REPO
from histodistill.evaluation.evaluate import evaluate_cohort
from histodistill.report.html import build_report
from histodistill.training.fold import train_fold
from histodistill.training.loop import TrainParams


def test_report_is_self_contained_and_flags_random_weights(tiny_pipeline, tmp_path):
    p = tiny_pipeline
    params = TrainParams(epochs=2, min_epochs=1, n_bins=2, hidden=8, max_patches=16)
    preds = []
    for fold in (0, 1):
        out = tmp_path / f"fold{fold}"
        train_fold("wsi_abmil", fold, p["folds"], p["clinical"], p["samples"], p["features"],
                   p["pathways"], out, params)
        preds.append(str(out / "predictions.tsv"))
    evaluate_cohort({"wsi_abmil": preds}, tmp_path / "metrics.tsv", tmp_path / "cindex.png",
                    {"wsi_abmil": str(tmp_path / "km.png")}, n_boot=20)
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    defaults = {"wsi": {"segmentation": {"thumbnail_mpp": 8.0, "glass_margin": 15,
                                         "min_component_um2": 40000.0},
                        "tiling": {"patch_um": 112.0, "patch_px": 112,
                                   "min_tissue_fraction": 0.5}},
                "train": {**cfg["train"], "n_bins": 2, "alpha": 0.0},
                "rna": {"score_method": "ssgsea", "geneset": "hallmark"}}
    cfg = {**cfg, **defaults}
    html_path = tmp_path / "report.html"
    build_report("tiny", cfg, tmp_path / "metrics.tsv", tmp_path / "cindex.png",
                 {"wsi_abmil": str(tmp_path / "km.png")}, p["rna_qc"],
                 p["rna_summary"], p["heatmap"], p["coverage"],
                 p["samples"], p["clinical"], p["pathways"], p["features"],
                 dict(list(p["tissue_qc"].items())[:2]), ["wsi_abmil"], html_path)
    html = html_path.read_text()
    assert "RANDOMLY INITIALISED" in html
    assert 'id="metrics"' in html and "wsi_abmil" in html
    sources = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert sources and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "http://" not in html and "https://" not in html and "<script" not in html
