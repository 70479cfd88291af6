"""Rule normalise_rna: read and check the cohort's RNA table; one matrix for pathway scoring."""

import _bootstrap  # noqa: F401
from histodistill.rna.normalise import normalise
from histodistill.rna.table import RnaSource
from histodistill.runtime import rule_context

with rule_context(snakemake.log[0], snakemake.threads):
    source = RnaSource.from_config(snakemake.params.source)
    normalise(source, snakemake.input.clinical, snakemake.output.normalised,
              snakemake.output.samples, snakemake.output.summary, snakemake.output.qc,
              n_cpus=snakemake.threads)
