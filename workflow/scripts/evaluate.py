"""Rule evaluate: metrics.tsv, c-index and Kaplan-Meier plots from out-of-fold predictions."""

import _bootstrap  # noqa: F401
from histodistill.evaluation.evaluate import EvalParams, evaluate
from histodistill.runtime import rule_context
from histodistill.training.task import Task

with rule_context(snakemake.log[0], snakemake.threads):
    evaluate(snakemake.params.predictions, snakemake.output.metrics,
             snakemake.output.cindex,
             dict(zip(snakemake.params.models, snakemake.output.km, strict=True)),
             EvalParams.from_config(snakemake.params.evaluate),
             task=Task.from_config(snakemake.params.task), threads=snakemake.threads)
