"""Render the cohort's report as ONE self-contained HTML file.

Images are embedded as base64 data URIs and the CSS is inline: the file opens offline, can be
mailed to a collaborator, and holds no external link or script.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from importlib.resources import files
from pathlib import Path
from typing import Any

import h5py
import jinja2
import pandas as pd
import yaml

from histodistill import __version__
from histodistill.deploy.construction import CONSTRUCTION, THRESHOLD_RULE
from histodistill.errors import InputError
from histodistill.io import write_text
from histodistill.models.catalog import CATALOG, with_teachers
from histodistill.provenance import versions
from histodistill.report.privileged import n_comparisons, privileged_rows
from histodistill.report.tables import comparison_table, fmt, model_table, tuning_table
from histodistill.rna.pathways import fraction_advice, load_scores
from histodistill.sheets import read_clinical, read_samples
from histodistill.training.task import Task

DISTRIBUTIONS = ("snakemake", "torch", "timm", "openslide-python", "openslide-bin",
                 "opencv-python-headless", "pydeseq2", "gseapy", "scikit-survival", "numpy",
                 "pandas")


def data_uri(image: str | Path) -> str:
    mime = "image/jpeg" if Path(image).suffix.lower() in (".jpg", ".jpeg") else "image/png"
    return f"data:{mime};base64," + base64.b64encode(Path(image).read_bytes()).decode("ascii")


def preview_uri(image: str | Path, max_px: int = 720) -> str:
    """A JPEG preview of a large image (a slide's QC image) for embedding: at most
    ``max_px`` on its long side, so six slides do not make the report tens of MB."""
    import cv2

    bgr = cv2.imread(str(image), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"cannot read the QC image {image}; re-run segment_and_tile")
    factor = max(bgr.shape[:2]) / max_px
    if factor > 1:
        bgr = cv2.resize(bgr, (max(1, round(bgr.shape[1] / factor)),
                               max(1, round(bgr.shape[0] / factor))),
                         interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise InputError(f"cannot encode a preview of {image}")
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def _fmt(v: Any) -> str:
    """Cells of the machine-readable metrics table and the summaries: NaN left empty."""
    return fmt(v, missing="", small=".4g")


def _rna_sentence(kind: str) -> str:
    """What normalise_rna did, by the kind it recorded in rna/summary.json."""
    return {
        "counts": "RNA-seq counts were normalised with pydeseq2 (median-of-ratios size factors, "
                  "blind parametric variance-stabilising transform).",
        "tpm": "RNA-seq TPMs were log2(x + 1)-transformed.",
        "fpkm": "RNA-seq FPKMs were log2(x + 1)-transformed.",
        "log2": "Log-scale RNA-seq values were used as given.",
        "zscore": "Per-gene RNA-seq z-scores (standardised by the data provider) were used as "
                  "given.",
    }[kind]


def _artefact_filters(wsi: dict[str, Any]) -> list[str]:
    filters = []
    if wsi.get("pen_filter", True):
        filters.append("blue, green and black pen ink removed")
    if wsi.get("bubble_filter", True):
        filters.append("air bubbles (regions enclosed by grey rims) removed")
    width = wsi.get("artefact_width_um", 80.0)
    if width:
        filters.append(f"straight components at most {width} um wide (slide edges, "
                       "scratches) dropped")
    return filters


def methods_text(cfg: dict[str, Any], extractor_note: str, rna_kind: str) -> list[str]:
    wsi, tiling = cfg["wsi"]["segmentation"], cfg["wsi"]["tiling"]
    return [
        f"Tissue was segmented on thumbnails at {wsi['thumbnail_mpp']} um/px (HSV saturation "
        f"threshold: Otsu bounded by glass saturation + {wsi['glass_margin']}, morphological "
        f"closing/opening, components under {wsi['min_component_um2']:.0f} um^2 dropped"
        f"{''.join('; ' + f for f in _artefact_filters(wsi))}). "
        f"Slides were tiled into non-overlapping {tiling['patch_um']} um patches resized to "
        f"{tiling['patch_px']} px ({tiling['patch_um'] / tiling['patch_px']:.3g} um/px), keeping "
        f"patches with tissue fraction >= {tiling['min_tissue_fraction']}.",
        f"Patch features: {extractor_note}",
        f"{_rna_sentence(rna_kind)} Expression was scored with gseapy {cfg['rna']['score_method']} "
        f"(enrichment score, rank sample normalisation) on the '{cfg['rna']['geneset']}' gene "
        "sets; pathway scores were standardised with means and SDs of each fold's training "
        "patients.",
        *_training_sentences(cfg),
        "Final models (results/{cohort}/final/{model}/, one per histology-only model): "
        + CONSTRUCTION.format(k=cfg["splits"]["n_folds"]) + "; risk groups of a scored "
        "cohort split at the " + THRESHOLD_RULE[Task.from_config(cfg.get("task")).type]
        + ". Bundled as safetensors weights and a manifest that scoring checks new slides' "
        "features against (extractor, weights' sha256, tile size, feature dimension).",
    ]


MODEL_SENTENCES = {
    "rna_snn": "rna_snn: a self-normalising network on the privileged vector (RNA ceiling).",
    "wsi_abmil": "wsi_abmil: gated-attention MIL on patch features, no RNA (the floor).",
    "teacher_fusion": "teacher_fusion: ABMIL slide embedding concatenated with the SNN "
                      "embedding of the privileged vector (late fusion).",
    "student_kd": "student_kd: ABMIL trained with logit distillation from teacher_fusion "
                  "(temperature {kd_temperature}, weight {kd_weight}).",
    "ghanet": "ghanet: G-HANet - {ghanet_groups} each encoded by an SNN; learned tokens "
              "reconstruct them from patches in two cross-attention + feed-forward blocks "
              "(MSE + (1 - cos)^{recon_gamma}, weight {recon_weight}); the survival branch "
              "averages gated morphology attention with each token's attention over its top "
              "{top_ratio} share of the bag (hyper-attention). Deviations from the official "
              "code: the target is each group's SNN embedding (METHODS.md), not its raw "
              "genes; the second block has its own attention weights; no per-fold gene "
              "selection; widths follow train.hidden; epochs are chosen on the inner "
              "validation split, never on the test fold.",
    "mope_teacher": "mope_teacher: pathway tokens read the slide by cross-attention into "
                    "pathway experts mixed by a gate (MoPE teacher).",
    "mope": "mope: pathway-indexed pathology experts aligned to mope_teacher by KL of pathway "
            "usage (weight {usage_weight}; target: {mope_usage_target}) and expert states "
            "weighted by each pathway's cross-validated reconstructibility from histology "
            "(weight {expert_weight}).",
    "bidistill": "bidistill: multimodal and WSI-only branches distilling both ways (logits and "
                 "features, weight {feature_weight}), the privileged vector dropped with "
                 "probability {missing_rate} in training; the WSI-only branch predicts.",
    "wsi_meanpool": "wsi_meanpool: the {pooling} of each bag's patch features, standardised on "
                    "the training patients, in a ridge-penalised {linear_model} (penalty "
                    "{penalty}); no RNA (the strong simple histology-only baseline).",
}
CONTROL_SENTENCES = {
    "permuted": "{name}: control - {base} trained identically but with the privileged vector "
                "shuffled across the fold's patients (same distribution, no link to the "
                "patient){teacher}.",
    "self": "{name}: control - {base} distilled from wsi_abmil (self-distillation, no RNA "
            "anywhere): the gain of the extra loss alone.",
}


def model_sentence(model: str, values: dict[str, Any]) -> str:
    info = CATALOG[model]
    if info.control is None:
        return MODEL_SENTENCES[model].format_map(values)
    teacher = f", distilled from {info.teacher}" if info.teacher else ""
    return CONTROL_SENTENCES[info.control].format(name=model, base=info.base, teacher=teacher)


class _Defaulting(dict):  # type: ignore[type-arg]
    def __missing__(self, key: str) -> str:
        return "default"


def _training_sentences(cfg: dict[str, Any]) -> list[str]:
    train, splits = cfg["train"], cfg["splits"]
    task = Task.from_config(cfg.get("task"))
    binary = task.type == "binary"
    priv = cfg.get("privileged") or {}
    covariates = "the clinical covariates " + ", ".join(priv.get("covariates", []))
    gene_level = priv.get("source") == "genes"
    source = {"rna": "the pathway scores", "clinical": covariates,
              "genes": f"the normalised expression of the genes of the '{cfg['rna']['geneset']}' "
                       "gene sets (variance-stabilising transform fitted on each training fold)",
              "both": "the pathway scores and " + covariates}[priv.get("source", "rna")]
    objective = (f"binary cross-entropy on '{task.endpoint}'" if binary else
                 f"the discrete-time survival likelihood ({train['n_bins']} intervals at "
                 f"quantiles of the training fold's event times, alpha = {train['alpha']})")
    values = _Defaulting(train)  # a key the config left out reads "default"
    values["ghanet_groups"] = ("one group per gene set" if gene_level else
                               f"{values['n_groups']} groups of the privileged vector "
                               "(clustered on training patients)")
    values["mope_usage_target"] = (
        "the teacher's usage re-weighted by each pathway's reconstructibility"
        if values["usage_target"] == "reconstructible" else "the teacher's usage")
    values["pooling"] = "mean and maximum" if values["pooling"] == "mean_max" else "mean"
    values["linear_model"] = "logistic regression" if binary else "Cox model (Breslow baseline)"
    models = [model_sentence(m, values) for m in with_teachers(cfg["models"])]
    tune = cfg.get("tune") or {}
    budget = int(tune.get("budget", 1))
    selection = (
        f"Model selection inside each training fold: every model tried the same budget of "
        f"{budget} configurations (the configured values and {budget - 1} seeded draws from "
        "its family's grid; a control tried its base model's), each trained from the same "
        f"seeds, and kept the one with the best inner-validation "
        f"{'AUC' if binary else 'c-index'}; the test fold was never used to choose."
        if budget > 1 else "Every model was trained once with the configured values (no "
        "search: tune.budget 1).")
    return [
        f"Patients were split into {splits['n_folds']} folds stratified by "
        f"{'the endpoint' if binary else 'event'} (seed {splits['seed']}); within each "
        f"training fold {splits['val_fraction']:.0%} of patients formed an inner validation "
        f"set for early stopping. Models were trained with {objective}, AdamW (lr "
        f"{train['lr']}), up to {train['epochs']} epochs, bags capped at "
        f"{train['max_patches']} patches in training. The privileged modality was {source}; "
        "distilled students see only histology at inference.",
        selection,
        *models,
    ]


def attention_figures(attention_dirs: list[str | Path]) -> dict[str, list[dict[str, str]]]:
    """model -> its attention figures (written by the attention rule), as data URIs."""
    out: dict[str, list[dict[str, str]]] = {}
    for d in map(Path, attention_dirs):
        index = pd.read_csv(d / "index.tsv", sep="\t", dtype={"patient": str, "slide": str})
        out[d.name] = [{
            "caption": f"{r.group}-risk #{r.rank}: patient {r.patient} ("
                       f"{'final model' if str(r.fold) == 'final' else f'fold {r.fold}'}, risk "
                       f"{r.risk:.3g}), slide {r.slide}, {r.n_patches} patches; GeoJSON: "
                       f"{r.stem}_attention.geojson",
            "overlay": data_uri(d / f"{r.stem}_overlay.jpg"),
            "top": data_uri(d / f"{r.stem}_top_patches.jpg"),
        } for r in index.itertuples(index=False)]
    return out


def render(template: str, **context: Any) -> str:
    """A report template of this package, with the shared style, the time and the versions."""
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    here = files("histodistill.report")
    return env.from_string(here.joinpath(template).read_text(encoding="utf-8")).render(
        style=here.joinpath("style.css").read_text(encoding="utf-8"),
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        versions={"histodistill": __version__, **versions(*DISTRIBUTIONS)}, **context)


def build_report(cohort: str, cfg: dict[str, Any], metrics_tsv: str | Path,
                 cindex_png: str | Path, km_pngs: dict[str, str], rna_qc_png: str | Path,
                 rna_summary_json: str | Path, heatmap_png: str | Path,
                 coverage_tsv: str | Path, samples_tsv: str | Path, clinical_tsv: str | Path,
                 pathways_parquet: str | Path, feature_h5s: list[str],
                 tissue_qc_pngs: dict[str, str], wsi_only: list[str],
                 out_html: str | Path, attention_dirs: list[str | Path] = (),
                 mope: tuple[str | Path, str | Path] | None = None,
                 ghanet: tuple[str | Path, str | Path] | None = None,
                 metas: list[str | Path] = ()) -> None:
    """``mope`` / ``ghanet``: (plot, table) of MoPE's pathway summary and G-HANet's group
    reconstructibility, when those models were trained; ``metas``: every model and fold's
    meta.json (what the search inside the fold tried and kept)."""
    clinical = read_clinical(clinical_tsv)
    slides = read_samples(samples_tsv, check_files=False)
    rna_patients = set(load_scores(pathways_parquet).index)
    coverage = pd.read_csv(coverage_tsv, sep="\t")
    metrics = pd.read_csv(metrics_tsv, sep="\t")
    rna = json.loads(Path(rna_summary_json).read_text(encoding="utf-8"))

    tiles, random_slides, extractors, failed = {}, [], set(), {}
    for path in feature_h5s:
        with h5py.File(path, "r") as f:
            sid = str(f.attrs["slide_id"])
            tiles[sid] = f["features"].shape[0]
            extractors.add((str(f.attrs["extractor"]), str(f.attrs["weights_source"]),
                            str(f.attrs["weights_sha256"])))
            if str(f.attrs.get("status", "ok")) != "ok":
                failed[sid] = str(f.attrs.get("reason", ""))
            elif bool(f.attrs["random_weights"]):  # only slides actually encoded count
                random_slides.append(sid)
    warnings = []
    if random_slides:
        warnings.append(
            f"features of {len(random_slides)} of {len(tiles) - len(failed)} encoded slides "
            "were computed with "
            "RANDOMLY INITIALISED encoder weights (demo/test mode). The metrics below show that "
            "the pipeline runs; they say nothing about a pathology foundation model.")
    if failed:
        warnings.append(
            f"{len(failed)} of {len(tiles)} slides FAILED and were excluded "
            "(wsi.on_slide_error: exclude); see the slide table for the reasons.")
    ext_note = "; ".join(f"{name} (weights: {src}; sha256 {sha[:12]}...)"
                         for name, src, sha in sorted(extractors))

    n_events = int(clinical.loc[sorted({s.patient for s in slides.values()}), "event"].sum())
    patients = sorted({s.patient for s in slides.values()})
    summary = {
        "patients with slides": len(patients),
        "slides": len(slides),
        "events (deaths)": n_events,
        "patients with RNA": f"{len(rna_patients & set(patients))} of {len(patients)}",
        "tiles in total": sum(tiles.values()),
        "median observed time (months)": f"{clinical.loc[patients, 'time'].median():.1f}",
    }
    task = Task.from_config(cfg.get("task"))
    binary = task.type == "binary"
    if binary:
        labels = task.labels(clinical, clinical_tsv).loc[patients]
        summary[f"{task.name}: positive / known"] = f"{int(labels.sum())} / {labels.notna().sum()}"
    table_cols, table_rows = model_table(metrics)
    n_boot = int(cfg["evaluate"]["n_bootstrap"])
    headline = "ROC AUC" if binary else "c-index"
    priv_rows, priv_sentences = privileged_rows(metrics, n_boot, headline)
    uno = metrics.loc[metrics["metric"] == "cindex_uno_tau", "value"].dropna()
    ghanet_rows = []
    if ghanet is not None:
        groups = pd.read_csv(ghanet[1], sep="\t")
        ghanet_rows = [{"fold": r.fold, "group": r.group, "n": r.n_patients,
                        "cos": _fmt(r.cosine_mean), "sd": _fmt(r.cosine_sd),
                        "mse": _fmt(r.mse_mean), "members": r.members}
                       for r in groups.itertuples()]
    mope_rows = []
    if mope is not None:
        top = pd.read_csv(mope[1], sep="\t").head(10)
        mope_rows = [{"pathway": r.pathway, "usage": _fmt(r.usage_mean),
                      "high": _fmt(r.usage_high_risk), "low": _fmt(r.usage_low_risk),
                      "teacher": _fmt(getattr(r, "teacher_usage_mean", float("nan"))),
                      "r2": _fmt(r.reconstructibility_mean)} for r in top.itertuples()]
    html = render(
        "template.html.j2", cohort=cohort, warnings=warnings, summary=summary,
        n_folds=cfg["splits"]["n_folds"],
        n_boot=cfg["evaluate"]["n_bootstrap"], wsi_only=wsi_only,
        metric_columns=list(metrics.columns),
        metrics=[{c: _fmt(v) for c, v in row.items()} for row in metrics.to_dict("records")],
        table_columns=table_cols, table_rows=table_rows,
        comparisons=comparison_table(metrics, n_boot), n_comparisons=n_comparisons(metrics),
        privileged_rows=priv_rows, privileged_sentences=priv_sentences,
        tuning_rows=tuning_table([json.loads(Path(m).read_text(encoding="utf-8"))
                                  for m in metas]),
        reference=cfg["evaluate"].get("reference", "wsi_abmil"),
        horizons=", ".join(f"{h:g}" for h in cfg["evaluate"].get("horizons", [])),
        uno_tau=f"{float(uno.iloc[0]):.1f}" if len(uno) else None,
        uno_auto=cfg["evaluate"].get("uno_tau", "auto") == "auto",
        attention=attention_figures(attention_dirs),
        mope_png=data_uri(mope[0]) if mope else None, mope_rows=mope_rows,
        ghanet_png=data_uri(ghanet[0]) if ghanet else None, ghanet_rows=ghanet_rows,
        cindex_png=data_uri(cindex_png), binary=binary, endpoint=task.endpoint,
        headline=headline,
        km_pngs={m: data_uri(p) for m, p in km_pngs.items()},
        rna_qc_png=data_uri(rna_qc_png), heatmap_png=data_uri(heatmap_png),
        rna=rna,
        genesets_used=int(coverage["used"].sum()), genesets_total=len(coverage),
        genesets_dropped=[f"{r.gene_set} ({r.n_found}/{r.n_genes} genes: {r.dropped_because})"
                          for r in coverage.loc[~coverage["used"]].itertuples()],
        genesets_advice=fraction_advice(coverage),
        slides=[{"slide": s, "patient": slides[s].patient, "tiles": tiles.get(s, ""),
                 "status": "failed: " + failed[s] if s in failed else "ok"}
                for s in sorted(slides)],
        tissue_qc={s: preview_uri(p) for s, p in tissue_qc_pngs.items()},
        methods=methods_text(cfg, ext_note, rna["kind"]),
        config_yaml=yaml.safe_dump(cfg, sort_keys=False),
    )
    write_text(out_html, html)
