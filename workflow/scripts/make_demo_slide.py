"""Rule make_demo_slide: one synthetic pyramidal TIFF of a demo cohort."""

import _bootstrap  # noqa: F401
from histodistill.demo.cohort import make_demo_slide
from histodistill.demo.spec import DemoSpec
from histodistill.runtime import rule_context

with rule_context(snakemake.log[0], snakemake.threads):
    make_demo_slide(snakemake.output[0], DemoSpec(**snakemake.params.spec),
                    snakemake.wildcards.slide)
