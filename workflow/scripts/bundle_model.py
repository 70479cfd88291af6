"""Rule bundle_model: a trained model's fold ensemble -> results/{cohort}/final/{model}/."""

import _bootstrap  # noqa: F401
from histodistill.deploy.bundle import bundle_model
from histodistill.evaluation.evaluate import EvalParams
from histodistill.runtime import rule_context
from histodistill.training.task import Task

with rule_context(snakemake.log[0], snakemake.threads):
    bundle_model(snakemake.wildcards.model, list(snakemake.input.predictions),
                 snakemake.wildcards.cohort, snakemake.output.manifest,
                 snakemake.output.weights, snakemake.params.tiling,
                 EvalParams.from_config(snakemake.params.evaluate),
                 Task.from_config(snakemake.params.task), code_version=snakemake.params.code)
