"""Rule report: the cohort's self-contained HTML report."""

from pathlib import Path

import _bootstrap  # noqa: F401
from histodistill.features.index import feature_paths
from histodistill.report.html import build_report
from histodistill.runtime import rule_context

inp = snakemake.input
with rule_context(snakemake.log[0], snakemake.threads):
    build_report(
        snakemake.wildcards.cohort, snakemake.params.config, inp.metrics, inp.cindex,
        {Path(p).stem.split("_", 1)[1]: p for p in inp.km}, inp.rna_qc, inp.rna_summary,
        inp.pathway_heatmap, inp.coverage,
        inp.samples, inp.clinical, inp.pathways, feature_paths(inp.features),
        {Path(p).name.removesuffix("_tiles.png"): p for p in inp.tissue_qc},
        snakemake.params.wsi_only, snakemake.output[0], attention_dirs=list(inp.attention),
        mope=tuple(inp.mope) if inp.mope else None,
        ghanet=tuple(inp.ghanet) if inp.ghanet else None, metas=list(inp.meta))
