"""Rule make_demo_cohort: sheets, RNA counts and ground truth of a demo cohort."""

from pathlib import Path

import _bootstrap  # noqa: F401
from histodistill.demo.cohort import write_demo_tables
from histodistill.demo.spec import DemoSpec
from histodistill.runtime import rule_context

with rule_context(snakemake.log[0], snakemake.threads):
    write_demo_tables(Path(snakemake.output.samples).parent, DemoSpec(**snakemake.params.spec),
                      snakemake.input.gmt)
