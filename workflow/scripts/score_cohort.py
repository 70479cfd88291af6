"""Rule score_cohort: one final model's risks (and attention maps) for a slide-only cohort."""

import _bootstrap  # noqa: F401
from histodistill.deploy.score import score_cohort
from histodistill.features.index import feature_paths
from histodistill.runtime import rule_context

inp, out = snakemake.input, snakemake.output
with rule_context(snakemake.log[0], snakemake.threads):
    score_cohort(snakemake.params.bundle, snakemake.wildcards.name, inp.samples,
                 feature_paths(inp.features), out.predictions, out.attention,
                 snakemake.params.n_patients, snakemake.params.min_tissue_fraction)
