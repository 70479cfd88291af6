"""Rule train: one model on one fold -> checkpoint and predictions."""

from pathlib import Path

import _bootstrap  # noqa: F401
from histodistill.features.index import feature_paths
from histodistill.runtime import rule_context
from histodistill.training.fold import train_fold
from histodistill.training.loop import TrainParams
from histodistill.training.privileged import Privileged
from histodistill.training.task import Task
from histodistill.training.tuning import TuneParams

params = TrainParams.from_config(snakemake.params.train)
with rule_context(snakemake.log[0], snakemake.threads, seed=params.seed):
    teacher = snakemake.input.get("teacher")
    index = snakemake.input.get("features")  # only models that read WSI features have one
    train_fold(snakemake.wildcards.model, int(snakemake.wildcards.fold),
               snakemake.input.folds, snakemake.input.clinical, snakemake.input.samples,
               feature_paths(index) if index else [], snakemake.input.get("pathways"),
               Path(snakemake.output.model).parent, params,
               teacher_dir=Path(teacher[0]).parent if teacher else None,
               code_version=snakemake.params.code,
               task=Task.from_config(snakemake.params.task),
               privileged=Privileged.from_config(snakemake.params.privileged),
               tune=TuneParams.from_config(snakemake.params.tune))
