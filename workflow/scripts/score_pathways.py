"""Rule score_pathways: per-patient pathway scores from a local GMT."""

import _bootstrap  # noqa: F401
from histodistill.rna.pathways import score_pathways
from histodistill.runtime import rule_context

with rule_context(snakemake.log[0], snakemake.threads):
    score_pathways(snakemake.input.normalised, snakemake.input.gmt, snakemake.output.scores,
                   snakemake.output.coverage, method=snakemake.params.method,
                   min_size=snakemake.params.min_size, max_size=snakemake.params.max_size,
                   threads=snakemake.threads)
