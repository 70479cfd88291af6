"""Rule normalise_rna: DESeq2 size factors + VST of the cohort's raw counts."""

import _bootstrap  # noqa: F401
from histodistill.rna.normalise import normalise_counts
from histodistill.runtime import rule_context

with rule_context(snakemake.log[0], snakemake.threads):
    normalise_counts(snakemake.input.counts, snakemake.input.clinical,
                     snakemake.output.normalised, snakemake.output.size_factors,
                     snakemake.output.qc, min_total_count=snakemake.params.min_total_count,
                     n_cpus=snakemake.threads)
