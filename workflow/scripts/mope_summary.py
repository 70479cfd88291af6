"""Rule mope_summary: MoPE's pathway usage and reconstructibility across the cohort."""

import _bootstrap  # noqa: F401
from histodistill.evaluation.pathway_summary import mope_summary
from histodistill.runtime import rule_context

with rule_context(snakemake.log[0], snakemake.threads):
    mope_summary(list(snakemake.input.predictions), snakemake.output.tsv,
                 snakemake.output.png, list(snakemake.input.teacher))
