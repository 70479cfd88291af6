"""Rules extract_features_<cohort>_<k>: patch features of one shard of slides, one h5 each."""

import _bootstrap  # noqa: F401
from histodistill.features.extract import SlideJob, extract_features
from histodistill.runtime import rule_context

cfg = snakemake.params.features
# on_slide_error, num_workers and tile_reader are read from the config, not passed as params:
# changing them must not re-run the slides that succeeded (their outputs do not depend on
# them; both tile readers give the same pixels).
with rule_context(snakemake.log[0], snakemake.threads):
    jobs = [SlideJob(*paths) for paths in zip(snakemake.params.slides, snakemake.input.slides,
                                              snakemake.input.patches, snakemake.output,
                                              strict=True)]
    extract_features(jobs, cfg["extractor"], cfg["weights"], seed=cfg["seed"],
                     batch_size=cfg["batch_size"],
                     workers=snakemake.config["features"]["num_workers"], device=cfg["device"],
                     precision=cfg["precision"], compile_model=cfg["compile"],
                     code_version=snakemake.params.code,
                     on_error=snakemake.config["wsi"]["on_slide_error"],
                     tile_reader=snakemake.config["features"]["tile_reader"])
