"""Rule mope_summary: MoPE's pathway usage and reconstructibility across the cohort."""

import _bootstrap  # noqa: F401
from histodistill.evaluation.pathway_summary import summarise_mope
from histodistill.runtime import rule_context

with rule_context(snakemake.log[0], snakemake.threads):
    summarise_mope(list(snakemake.input.predictions), snakemake.output.tsv,
                   snakemake.output.png, list(snakemake.input.teacher))
