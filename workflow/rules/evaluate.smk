rule evaluate:
    input:
        predictions=lambda wc: [f for files in predictions(wc.cohort).values() for f in files],
        meta=lambda wc: [
            f.replace("predictions.tsv", "meta.json")
            for files in predictions(wc.cohort).values()
            for f in files
        ],
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
    threads: 4
    resources:
        mem_mb=scaled_mem(2000),
        runtime=20,
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/evaluate.py"


rule attention:
    input:
        predictions=lambda wc: predictions(wc.cohort)[wc.model],
        checkpoints=lambda wc: [
            f"{model_dir(wc.cohort, wc.model, k)}/{name}"
            for k in FOLDS
            for name in ("model.pt", "meta.json")
        ],
        samples=lambda wc: COHORTS[wc.cohort]["samples"],
        features=lambda wc: feature_index(wc.cohort),
    output:
        report(
            directory("results/{cohort}/attention/{model}"),
            patterns=["{name}_overlay.jpg", "{name}_top_patches.jpg"],
            caption="../report/attention.rst",
            category="Attention",
            subcategory="{cohort}",
        ),
    params:
        n_patients=config["evaluate"]["attention_patients"],
        code=CODE["attention"],
    wildcard_constraints:
        cohort=_alternatives(TRAINED),
        model="|".join(ATTENTION_MODELS) or "none",
    benchmark:
        "results/{cohort}/benchmarks/attention_{model}.tsv"
    log:
        "results/{cohort}/logs/attention_{model}.log",
    threads: 1
    resources:
        mem_mb=scaled_mem(3000),
        runtime=30,
    conda:
        "../../envs/attention.yaml"
    script:
        "../scripts/attention.py"


rule mope_summary:
    input:
        predictions=lambda wc: predictions(wc.cohort)["mope"],
        teacher=lambda wc: predictions(wc.cohort)["mope_teacher"],
        meta=lambda wc: [f"{model_dir(wc.cohort, 'mope', k)}/meta.json" for k in FOLDS],
    output:
        tsv="results/{cohort}/mope_pathways.tsv",
        png=report(
            "results/{cohort}/plots/mope_pathways.png",
            caption="../report/mope_pathways.rst",
            category="Attention",
            subcategory="{cohort}",
        ),
    params:
        code=CODE["mope_summary"],
    benchmark:
        "results/{cohort}/benchmarks/mope_summary.tsv"
    log:
        "results/{cohort}/logs/mope_summary.log",
    threads: 1
    resources:
        mem_mb=scaled_mem(1000),
        runtime=10,
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/mope_summary.py"


rule ghanet_summary:
    input:
        predictions=lambda wc: predictions(wc.cohort)["ghanet"],
        checkpoints=lambda wc: [
            f"{model_dir(wc.cohort, 'ghanet', k)}/{name}"
            for k in FOLDS
            for name in ("model.pt", "meta.json")
        ],
        clinical=lambda wc: COHORTS[wc.cohort]["clinical"],
        samples=lambda wc: COHORTS[wc.cohort]["samples"],
        features=lambda wc: feature_index(wc.cohort),
        pathways=lambda wc: privileged_table(wc.cohort),
    output:
        tsv="results/{cohort}/ghanet_groups.tsv",
        png=report(
            "results/{cohort}/plots/ghanet_groups.png",
            caption="../report/ghanet_groups.rst",
            category="Attention",
            subcategory="{cohort}",
        ),
    params:
        code=CODE["ghanet_summary"],
    benchmark:
        "results/{cohort}/benchmarks/ghanet_summary.tsv"
    log:
        "results/{cohort}/logs/ghanet_summary.log",
    threads: 1
    resources:
        mem_mb=scaled_mem(3000),
        runtime=30,
    conda:
        "../../envs/attention.yaml"
    script:
        "../scripts/ghanet_summary.py"


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
    wildcard_constraints:
        cohort=_alternatives(TRAINED),
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
