"""Rule gene_table: gene-level privileged vectors (privileged.source: genes), fitted per fold."""

import _bootstrap  # noqa: F401
from histodistill.rna.genes import gene_table
from histodistill.rna.table import RnaSource
from histodistill.runtime import rule_context

with rule_context(snakemake.log[0], snakemake.threads):
    gene_table(RnaSource.from_config(snakemake.params.source), snakemake.input.clinical,
               snakemake.input.folds, snakemake.input.gene_sets, snakemake.output.genes,
               snakemake.output.coverage, min_size=snakemake.params.min_size,
               min_fraction=snakemake.params.min_fraction,
               enough_genes=snakemake.params.enough_genes, n_cpus=snakemake.threads)
