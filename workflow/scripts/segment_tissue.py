"""Rule segment_tissue: tissue polygons (GeoJSON) and a QC image of one slide."""

import _bootstrap  # noqa: F401
from histodistill.runtime import rule_context
from histodistill.wsi.segmentation import SegmentationParams, segment_slide

with rule_context(snakemake.log[0], snakemake.threads):
    segment_slide(snakemake.input.slide, snakemake.wildcards.slide, snakemake.output.geojson,
                  snakemake.output.qc, SegmentationParams(**snakemake.params.segmentation),
                  mpp_override=snakemake.params.mpp)
