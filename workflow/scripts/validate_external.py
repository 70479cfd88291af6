"""Rule validate_external: a scored cohort's outcomes against its final models' risks."""

import _bootstrap  # noqa: F401
from histodistill.deploy.external import validate_external
from histodistill.evaluation.evaluate import EvalParams
from histodistill.runtime import rule_context

names = snakemake.params.names
with rule_context(snakemake.log[0], snakemake.threads):
    validate_external(dict(zip(names, snakemake.input.predictions, strict=True)),
                      dict(zip(names, snakemake.input.manifests, strict=True)),
                      snakemake.input.clinical, snakemake.output.metrics,
                      snakemake.output.cindex,
                      {n: f"{snakemake.output.curves}/{snakemake.params.curve}_{n}.png"
                       for n in names},
                      EvalParams.from_config(snakemake.params.evaluate))
