"""Rule index_features: one row per slide's feature file (what cohort-level steps read)."""

import _bootstrap  # noqa: F401
from histodistill.features.index import index_features
from histodistill.runtime import rule_context

with rule_context(snakemake.log[0], snakemake.threads):
    index_features(list(snakemake.input), snakemake.output[0])
