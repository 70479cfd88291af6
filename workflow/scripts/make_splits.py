"""Rule make_splits: patient-level, seeded, stratified folds (event or binary endpoint)."""

import _bootstrap  # noqa: F401
from histodistill.runtime import rule_context
from histodistill.splits import make_splits
from histodistill.training.task import Task

cfg = snakemake.params.splits
with rule_context(snakemake.log[0], snakemake.threads):
    make_splits(snakemake.input.clinical, snakemake.input.samples, snakemake.output[0],
                cfg["n_folds"], cfg["val_fraction"], cfg["seed"],
                Task.from_config(snakemake.params.task))
