rule evaluate:
    input:
        predictions=lambda wc: [f for files in predictions(wc.cohort).values() for f in files],
    output:
        metrics=report(
            "results/{cohort}/metrics.tsv",
            caption="../report/metrics.rst",
            category="Performance",
            subcategory="{cohort}",
        ),
        cindex=report(
            "results/{cohort}/plots/cindex.png",
            caption="../report/cindex.rst",
            category="Performance",
            subcategory="{cohort}",
        ),
        km=report(
            expand("results/{{cohort}}/plots/{kind}_{model}.png", kind=CURVE, model=MODELS),
            caption="../report/km.rst",
            category="Kaplan-Meier" if CURVE == "km" else "ROC",
            subcategory="{cohort}",
        ),
    params:
        predictions=lambda wc: predictions(wc.cohort),
        models=MODELS,
        evaluate=config["evaluate"],
        task=config["task"],
        code=CODE["evaluate"],
    benchmark:
        "results/{cohort}/benchmarks/evaluate.tsv"
    log:
        "results/{cohort}/logs/evaluate.log",
    threads: 1
    resources:
        mem_mb=scaled_mem(2000),
        runtime=20,
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/evaluate.py"


rule report:
    input:
        unpack(report_inputs),
    output:
        report(
            "results/{cohort}/report.html",
            caption="../report/report.rst",
            category="Report",
            subcategory="{cohort}",
        ),
    params:
        config=cohort_config,
        wsi_only=[m for m in MODELS if CATALOG[m].histology_only],
        code=CODE["report"],
    benchmark:
        "results/{cohort}/benchmarks/report.tsv"
    log:
        "results/{cohort}/logs/report.log",
    threads: 1
    resources:
        mem_mb=scaled_mem(2000),
        runtime=10,
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/report.py"
