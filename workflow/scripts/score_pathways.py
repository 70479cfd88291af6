"""Rule score_pathways: per-patient pathway scores from a local gene-set file."""

import _bootstrap  # noqa: F401
from histodistill.rna.pathways import score_pathways
from histodistill.runtime import rule_context

with rule_context(snakemake.log[0], snakemake.threads):
    score_pathways(snakemake.input.normalised, snakemake.input.gene_sets,
                   snakemake.input.clinical, snakemake.output.scores, snakemake.output.coverage,
                   snakemake.output.heatmap, method=snakemake.params.method,
                   min_size=snakemake.params.min_size, max_size=snakemake.params.max_size,
                   min_fraction=snakemake.params.min_fraction,
                   enough_genes=snakemake.params.enough_genes, threads=snakemake.threads,
                   folds_tsv=snakemake.input.get("folds"))
