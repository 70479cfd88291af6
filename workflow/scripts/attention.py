"""Rule attention: attention maps of the highest- and lowest-risk out-of-fold patients."""

import _bootstrap  # noqa: F401
from histodistill.features.index import feature_paths
from histodistill.evaluation.attention import attention
from histodistill.runtime import rule_context

inp = snakemake.input
with rule_context(snakemake.log[0], snakemake.threads):
    attention(snakemake.wildcards.model, list(inp.predictions), inp.samples,
              feature_paths(inp.features), snakemake.output[0], snakemake.params.n_patients)
