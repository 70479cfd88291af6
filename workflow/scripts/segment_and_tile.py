"""Rule segment_and_tile: tissue polygons, tile coordinates and both QC images of one slide."""

import _bootstrap  # noqa: F401
from histodistill.runtime import rule_context
from histodistill.wsi.segmentation import SegmentationParams
from histodistill.wsi.tiling import TilingParams, segment_and_tile

# on_slide_error is read from the config, not passed as a param: switching stop -> exclude
# must not re-run the slides that succeeded (their outputs do not depend on it).
out = snakemake.output
with rule_context(snakemake.log[0], snakemake.threads):
    segment_and_tile(snakemake.input.slide, snakemake.wildcards.slide, out.geojson,
                     out.tissue_qc, out.patches, out.tiles_qc,
                     SegmentationParams(**snakemake.params.segmentation),
                     TilingParams(**snakemake.params.tiling), mpp_override=snakemake.params.mpp,
                     on_error=snakemake.config["wsi"]["on_slide_error"])
