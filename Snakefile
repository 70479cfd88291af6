"""histodistill: H&E slides + bulk RNA + outcomes -> histology-only risk models.

snakemake --cores all                    # every cohort of config/config.yaml
snakemake --cores all --configfile my.yaml --replace-workflow-config
"""

from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/demo.smk"
include: "workflow/rules/wsi.smk"
include: "workflow/rules/features.smk"
include: "workflow/rules/rna.smk"
include: "workflow/rules/splits.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/deploy.smk"


onsuccess:
    print_excluded_slides()


onerror:
    print_excluded_slides()


rule all:
    input:
        all_targets(),
    default_target: True
