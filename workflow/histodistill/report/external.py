"""The report of a cohort scored by final models: what was scored, with which bundles, and -
when the cohort has outcomes - the external validation beside each model's cross-validation."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import h5py
import pandas as pd
import yaml

from histodistill.deploy.manifest import read_manifest
from histodistill.io import write_text
from histodistill.report.html import attention_figures, data_uri, render
from histodistill.report.privileged import n_comparisons
from histodistill.report.tables import comparison_table, fmt, heading, model_table
from histodistill.sheets import read_clinical, read_samples

SIDE_BY_SIDE = ("cindex", "cindex_uno", "ibs", "auc", "average_precision", "balanced_accuracy")


def _ci(value: Any, lo: Any, hi: Any) -> str:
    value, lo, hi = (float("nan") if v is None else float(v) for v in (value, lo, hi))
    if math.isnan(lo):
        return fmt(value)
    return f"{fmt(value)} [{fmt(lo)}, {fmt(hi)}]"


def _bundle_row(name: str, m: dict[str, Any], preds: pd.DataFrame) -> dict[str, str]:
    cv = {r["metric"]: r for r in m["training"]["cv_metrics"]}
    head = "auc" if m["task"]["type"] == "binary" else "cindex"
    groups = preds["risk_group"].value_counts()
    return {"name": name, "model": m["model"], "cohort": m["training"]["cohort"],
            "trained": f"{m['training']['n_patients']} patients, "
                       f"{m['training']['n_events']} "
                       f"{'positive' if head == 'auc' else 'events'}",
            "cv": _ci(cv[head]["value"], cv[head]["ci_low"], cv[head]["ci_high"])
            if head in cv else "n/a",
            "threshold": f"{m['threshold']['value']:.4g} ({m['threshold']['rule']})",
            "groups": ", ".join(f"{g}: {int(n)}" for g, n in groups.items() if g),
            "extractor": f"{m['extractor']['name']} (sha256 "
                         f"{m['extractor']['weights_sha256'][:12]}...)"}


def _side_by_side(metrics: pd.DataFrame, manifests: dict[str, dict[str, Any]]
                  ) -> list[dict[str, str]]:
    rows = []
    for name, m in manifests.items():
        cv = {r["metric"]: r for r in m["training"]["cv_metrics"]}
        ext = metrics[metrics["model"] == name].set_index("metric")
        for metric in [*SIDE_BY_SIDE, *(k for k in cv if k.startswith("td_auc_"))]:
            if metric not in ext.index and metric not in cv:
                continue
            e = ext.loc[metric] if metric in ext.index else None
            c = cv.get(metric)
            rows.append({"name": name, "metric": heading(metric),
                         "cv": _ci(c["value"], c["ci_low"], c["ci_high"]) if c else "n/a",
                         "external": _ci(e["value"], e["ci_low"], e["ci_high"])
                         if e is not None else "n/a"})
    return rows


def external_report(cohort: str, cfg: dict[str, Any], predictions: dict[str, str | Path],
                    manifests: dict[str, str | Path], samples_tsv: str | Path,
                    feature_h5s: list[str], attention_dirs: list[str | Path],
                    out_html: str | Path, clinical_tsv: str | Path | None = None,
                    metrics_tsv: str | Path | None = None,
                    cindex_png: str | Path | None = None,
                    curve_pngs: dict[str, str | Path] | None = None) -> None:
    """``predictions`` / ``manifests``: name -> the cohort's predictions and its bundle's
    manifest; the validation files are given when the cohort has a clinical sheet."""
    bundles = {n: read_manifest(p) for n, p in manifests.items()}
    preds = {n: pd.read_csv(p, sep="\t", dtype={"patient": str}, keep_default_na=False,
                            na_values=[""]) for n, p in predictions.items()}
    slides = read_samples(samples_tsv, check_files=False)
    tiles, failed = {}, {}
    for path in feature_h5s:
        with h5py.File(path, "r") as f:
            sid = str(f.attrs["slide_id"])
            tiles[sid] = f["features"].shape[0]
            if str(f.attrs.get("status", "ok")) != "ok":
                failed[sid] = str(f.attrs.get("reason", ""))
    first = next(iter(preds.values()))
    not_scored = first[first["status"] != "scored"]
    warnings = []
    if any(m["extractor"]["random_weights"] for m in bundles.values()):
        warnings.append("the final models were trained on features of RANDOMLY INITIALISED "
                        "encoder weights (demo/test mode): the scores show that the pipeline "
                        "runs, not what a pathology foundation model would give.")
    if len(not_scored):
        warnings.append(f"{len(not_scored)} of {len(first)} patients were NOT scored (a failed "
                        "slide or no tissue: no score from a partial bag); see below.")
    summary = {"patients in the sample sheet": len(first), "slides": len(slides),
               "patients scored": int((first["status"] == "scored").sum()),
               "tiles in total": sum(tiles.values())}
    metrics = pd.read_csv(metrics_tsv, sep="\t") if metrics_tsv else None
    if clinical_tsv is not None:
        clinical = read_clinical(clinical_tsv)
        known = sorted(set(first["patient"]) & set(clinical.index))
        summary["patients with outcomes"] = len(known)
        summary["events (deaths)"] = int(clinical.loc[known, "event"].sum())
        summary["median observed time (months)"] = f"{clinical.loc[known, 'time'].median():.1f}"
    n_boot = int(cfg["evaluate"]["n_bootstrap"])
    binary = next(iter(bundles.values()))["task"]["type"] == "binary"
    table_cols, table_rows = model_table(metrics) if metrics is not None else ([], [])
    html = render(
        "external.html.j2", cohort=cohort, warnings=warnings, summary=summary,
        bundles=[_bundle_row(n, bundles[n], preds[n]) for n in bundles],
        construction=next(iter(bundles.values()))["construction"]["description"],
        validated=metrics is not None, binary=binary, n_boot=n_boot,
        headline="ROC AUC" if binary else "c-index",
        table_columns=table_cols, table_rows=table_rows,
        side_by_side=_side_by_side(metrics, bundles) if metrics is not None else [],
        comparisons=comparison_table(metrics, n_boot) if metrics is not None else [],
        n_comparisons=n_comparisons(metrics) if metrics is not None else 0,
        reference=cfg["evaluate"].get("reference", "wsi_abmil"),
        cindex_png=data_uri(cindex_png) if cindex_png else None,
        curve_pngs={n: data_uri(p) for n, p in (curve_pngs or {}).items()},
        not_scored=[{"patient": r.patient, "reason": r.reason}
                    for r in not_scored.itertuples()],
        slides=[{"slide": s, "patient": slides[s].patient, "tiles": tiles.get(s, ""),
                 "status": "failed: " + failed[s] if s in failed else "ok"}
                for s in sorted(slides)],
        attention=attention_figures(attention_dirs),
        config_yaml=yaml.safe_dump(cfg, sort_keys=False))
    write_text(out_html, html)
