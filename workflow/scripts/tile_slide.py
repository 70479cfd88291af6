"""Rule tile_slide: level-0 tile coordinates of one slide at a physical patch size."""

import _bootstrap  # noqa: F401
from histodistill.runtime import rule_context
from histodistill.wsi.tiling import TilingParams, tile_slide

# on_slide_error is read from the config, not passed as a param: switching stop -> exclude
# must not re-run the slides that succeeded (their outputs do not depend on it).
with rule_context(snakemake.log[0], snakemake.threads):
    tile_slide(snakemake.input.slide, snakemake.wildcards.slide, snakemake.input.tissue,
               snakemake.output.patches, TilingParams(**snakemake.params.tiling),
               mpp_override=snakemake.params.mpp,
               on_error=snakemake.config["wsi"]["on_slide_error"],
               tissue_qc_png=snakemake.input.tissue_qc, out_qc_png=snakemake.output.qc)
