"""The HTML report: one self-contained file that says when weights were random, shows the
metrics with intervals, the paired comparison, attention maps and MoPE's pathways, and renders
in a real browser (Debian's headless chromium)."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
import yaml

from conftest import REPO
from histodistill.evaluation.attention import attention
from histodistill.evaluation.evaluate import EvalParams, evaluate
from histodistill.evaluation.group_summary import ghanet_summary
from histodistill.evaluation.pathway_summary import mope_summary
from histodistill.report.html import build_report

MODELS = ("wsi_abmil", "ghanet", "mope", "wsi_meanpool", "ghanet_permuted")


@pytest.fixture(scope="module")
def report(tiny_pipeline, tiny_models, tmp_path_factory):
    p, out = tiny_pipeline, tmp_path_factory.mktemp("report")
    preds = {m: tiny_models[m] for m in MODELS}
    km = {m: str(out / f"km_{m}.png") for m in MODELS}
    evaluate(preds, out / "metrics.tsv", out / "cindex.png", km,
             EvalParams(n_bootstrap=20, horizons=(20.0,)))
    attention_dirs = []
    for m in MODELS:
        attention(m, preds[m], p["samples"], p["features"], out / "attention" / m, 1)
        attention_dirs.append(out / "attention" / m)
    mope_summary(preds["mope"], out / "mope.tsv", out / "mope.png",
                 tiny_models["mope_teacher"])
    ghanet_summary(preds["ghanet"], p["clinical"], p["samples"], p["features"],
                   p["pathways"], out / "ghanet.tsv", out / "ghanet.png")
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    defaults = {"wsi": {"segmentation": {"thumbnail_mpp": 8.0, "glass_margin": 15,
                                         "min_component_um2": 40000.0},
                        "tiling": {"patch_um": 112.0, "patch_px": 112,
                                   "min_tissue_fraction": 0.5}},
                "train": {**cfg["train"], "n_bins": 2, "alpha": 0.0},
                "rna": {"score_method": "ssgsea", "geneset": "hallmark"},
                "models": list(MODELS)}
    cfg = {**cfg, **defaults}
    html_path = out / "report.html"
    build_report("tiny", cfg, out / "metrics.tsv", out / "cindex.png", km, p["rna_qc"],
                 p["rna_summary"], p["heatmap"], p["coverage"],
                 p["samples"], p["clinical"], p["pathways"], p["features"],
                 dict(list(p["tissue_qc"].items())[:2]), list(MODELS), html_path,
                 attention_dirs=attention_dirs, mope=(out / "mope.png", out / "mope.tsv"),
                 ghanet=(out / "ghanet.png", out / "ghanet.tsv"),
                 metas=[f.replace("predictions.tsv", "meta.json") for m in MODELS
                        for f in preds[m]])
    return html_path


def test_report_is_self_contained_and_complete(report):
    html = report.read_text()
    assert "RANDOMLY INITIALISED" in html
    for table in ("metrics", "comparison", "metrics-long", "mope", "ghanet", "cohort-summary",
                  "slides", "versions"):
        assert f'id="{table}"' in html, table
    assert re.search(r"ghanet</td><td class=\"l\">wsi_abmil</td><td>\d+</td><td>-?\d\.\d{3} "
                     r"\[-?\d\.\d{3}, -?\d\.\d{3}\]", html)  # difference [CI] vs the floor
    for m in MODELS:  # >= 1 high + 1 low patient each (ties in risk may add one)
        assert 2 <= html.count(f'alt="attention {m} ') <= 3, m
    # the privileged-information section: each student against the baselines and its twin
    for other in ("wsi_meanpool", "wsi_abmil", "ghanet_permuted"):
        assert re.search(rf'<td class="l">ghanet</td><td class="l">{other}</td><td>-?\d\.\d{{3}} '
                         r"\[", html), other
    assert "mope</td><td class=\"l\">mope_permuted" not in html  # not run: no row
    sentences = re.search(r'<ul id="privileged-sentences">(.*?)</ul>', html, re.S).group(1)
    assert sentences.count("<li>") == 2  # ghanet, mope (both students)
    assert "permuted twin" in sentences and "add mope_permuted to models" in sentences
    # model selection: wsi_meanpool tried 3 penalties per fold; bag agreement for ABMIL
    assert re.search(r'<td class="l">wsi_meanpool</td><td>0</td><td>3</td><td class="l">'
                     r"(configured values|penalty [\d.]+)</td>", html)
    assert re.search(r'<td class="l">wsi_abmil</td><td>0</td><td>1</td><td class="l">'
                     r"configured values</td><td>[\d.n/a]+</td><td>(-?\d\.\d{3}|n/a)", html)
    assert "Holm" in html and "truncated at" in html
    assert "expert: " not in html or "MoPE" in html
    assert re.search(r"<th>teacher's usage</th>", html) and "<td>nan</td>" not in html
    sources = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert sources and all(s.startswith(("data:image/png;base64,", "data:image/jpeg;base64,"))
                           for s in sources)
    assert len(html) < 3_000_000  # mailable: top patches are JPEG
    assert "http://" not in html and "https://" not in html and "<script" not in html


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine (Debian: apt install "
                    "chromium); the HTML is still checked as text above")
def test_report_renders_in_headless_chromium(report, tmp_path):
    """Chromium opens the file offline; every image decodes (checked by a probe script added
    to a *copy*, since the report itself has no script) and the screenshot shows the tables'
    borders and the plots' colours."""
    probe = tmp_path / "probe.html"
    probe.write_text(report.read_text().replace("</body>", """<script>
const imgs = [...document.images];
document.body.setAttribute("data-images", imgs.length);
const broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0));
document.body.setAttribute("data-broken", broken.length);
document.body.setAttribute("data-rows", document.querySelectorAll("#metrics tr").length);
</script></body>"""))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--virtual-time-budget=5000", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([CHROMIUM, *flags, "--dump-dom", probe.as_uri()], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    n_images = int(re.search(r'data-images="(\d+)"', dom).group(1))
    assert n_images >= 10 and 'data-broken="0"' in dom
    assert int(re.search(r'data-rows="(\d+)"', dom).group(1)) == 1 + len(MODELS)

    shot = tmp_path / "report.png"
    subprocess.run([CHROMIUM, *flags, f"--screenshot={shot}", "--window-size=1200,5000",
                    report.as_uri()], capture_output=True, timeout=120, check=True)
    import cv2

    img = cv2.imread(str(shot), cv2.IMREAD_COLOR)
    assert img is not None and img.shape[:2] == (5000, 1200)
    rgb = img[..., ::-1].astype(int)
    grey_border = (np.abs(rgb - [204, 204, 204]).sum(axis=-1) < 10).sum()  # table borders #ccc
    saturated = ((rgb.max(axis=-1) - rgb.min(axis=-1)) > 80).sum()  # plot colours, H&E tiles
    assert grey_border > 2000 and saturated > 20000


def test_methods_text_names_the_mope_usage_target():
    from histodistill.report.html import _training_sentences

    cfg = {"train": {"n_bins": 4, "alpha": 0.0, "lr": 1e-3, "epochs": 5, "max_patches": 64},
           "splits": {"n_folds": 5, "seed": 0, "val_fraction": 0.2},
           "rna": {"geneset": "hallmark"}, "models": ["mope"]}
    assert "target: the teacher's usage)" in " ".join(_training_sentences(cfg))
    cfg["train"]["usage_target"] = "reconstructible"
    assert "re-weighted by each pathway's reconstructibility" in " ".join(
        _training_sentences(cfg))
