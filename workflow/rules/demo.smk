rule make_demo_cohort:
    input:
        gmt=lambda wc: COHORTS[wc.cohort]["demo_gmt"],
    output:
        samples="results/{cohort}/demo/samples.tsv",
        clinical="results/{cohort}/demo/clinical.tsv",
        rna_counts="results/{cohort}/demo/rna_counts.tsv",
        truth=report(
            "results/{cohort}/demo/ground_truth.tsv",
            caption="../report/ground_truth.rst",
            category="Demo cohort",
            subcategory="{cohort}",
        ),
        truth_json="results/{cohort}/demo/ground_truth.json",
    params:
        spec=demo_config,
        code=CODE["make_demo_cohort"],
    wildcard_constraints:
        cohort=_alternatives(DEMO_COHORTS),
    benchmark:
        "results/{cohort}/benchmarks/make_demo_cohort.tsv"
    log:
        "results/{cohort}/logs/make_demo_cohort.log",
    threads: 1
    resources:
        mem_mb=scaled_mem(2000),
        runtime=10,
    conda:
        "../../envs/wsi.yaml"
    script:
        "../scripts/make_demo_cohort.py"


rule make_demo_slide:
    output:
        "results/{cohort}/demo/slides/{slide}.tiff",
    params:
        spec=demo_config,
        code=CODE["make_demo_slide"],
    wildcard_constraints:
        cohort=_alternatives(DEMO_COHORTS),
    benchmark:
        "results/{cohort}/benchmarks/make_demo_slide/{slide}.tsv"
    log:
        "results/{cohort}/logs/make_demo_slide/{slide}.log",
    threads: 1
    resources:
        mem_mb=scaled_mem(1000),
        runtime=10,
    conda:
        "../../envs/wsi.yaml"
    script:
        "../scripts/make_demo_slide.py"
