"""Rule segment_tissue: tissue polygons (GeoJSON) and a QC image of one slide."""

import _bootstrap  # noqa: F401
from histodistill.runtime import rule_context
from histodistill.wsi.segmentation import SegmentationParams, segment_slide

# on_slide_error is read from the config, not passed as a param: switching stop -> exclude
# must not re-run the slides that succeeded (their outputs do not depend on it).
with rule_context(snakemake.log[0], snakemake.threads):
    segment_slide(snakemake.input.slide, snakemake.wildcards.slide, snakemake.output.geojson,
                  snakemake.output.qc, SegmentationParams(**snakemake.params.segmentation),
                  mpp_override=snakemake.params.mpp,
                  on_error=snakemake.config["wsi"]["on_slide_error"])
