"""Rule ghanet_summary: out-of-fold reconstructibility of G-HANet's groups from histology."""

import _bootstrap  # noqa: F401
from histodistill.features.index import feature_paths
from histodistill.evaluation.group_summary import ghanet_summary
from histodistill.runtime import rule_context

inp = snakemake.input
with rule_context(snakemake.log[0], snakemake.threads):
    ghanet_summary(list(inp.predictions), inp.clinical, inp.samples, feature_paths(inp.features),
                   inp.pathways, snakemake.output.tsv, snakemake.output.png)
