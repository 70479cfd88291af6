"""Rule external_report: the report of a cohort scored by final models."""

import _bootstrap  # noqa: F401
from histodistill.features.index import feature_paths
from histodistill.report.external import external_report
from histodistill.runtime import rule_context

inp, names = snakemake.input, snakemake.params.names
validated = "metrics" in inp.keys()  # noqa: SIM118 (a Namedlist: `in` looks at values)
with rule_context(snakemake.log[0], snakemake.threads):
    external_report(
        snakemake.wildcards.cohort, snakemake.params.config,
        dict(zip(names, inp.predictions, strict=True)),
        dict(zip(names, inp.manifests, strict=True)), inp.samples, feature_paths(inp.features),
        list(inp.attention), snakemake.output[0],
        clinical_tsv=inp.clinical if validated else None,
        metrics_tsv=inp.metrics if validated else None,
        cindex_png=inp.cindex if validated else None,
        curve_pngs={n: f"{inp.curves}/{snakemake.params.curve}_{n}.png" for n in names}
        if validated else None)
