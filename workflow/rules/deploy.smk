# Final models leave the pipeline: a bundle per trained cohort and histology-only model, the
# scoring of cohorts that have only slides, and their external validation and report.


rule bundle_model:
    input:
        predictions=lambda wc: predictions(wc.cohort)[wc.model],
        checkpoints=lambda wc: [
            f"{model_dir(wc.cohort, wc.model, k)}/{name}"
            for k in FOLDS
            for name in ("model.pt", "meta.json")
        ],
    output:
        manifest="results/{cohort}/final/{model}/manifest.json",
        weights="results/{cohort}/final/{model}/weights.safetensors",
    params:
        tiling=config["wsi"]["tiling"],
        evaluate=config["evaluate"],
        task=config["task"],
        code=CODE["bundle_model"],
    wildcard_constraints:
        cohort=_alternatives(TRAINED),
        model=_alternatives([m for m in MODELS if CATALOG[m].histology_only]),
    benchmark:
        "results/{cohort}/benchmarks/bundle_model_{model}.tsv"
    log:
        "results/{cohort}/logs/bundle_model_{model}.log",
    threads: 1
    resources:
        mem_mb=scaled_mem(2000),
        runtime=10,
    conda:
        "../../envs/deploy.yaml"
    script:
        "../scripts/bundle_model.py"


rule score_cohort:
    input:
        manifest=lambda wc: f"{bundle_dir(wc.cohort, wc.name)}/manifest.json",
        weights=lambda wc: f"{bundle_dir(wc.cohort, wc.name)}/weights.safetensors",
        samples=lambda wc: COHORTS[wc.cohort]["samples"],
        features=lambda wc: feature_index(wc.cohort),
    output:
        predictions="results/{cohort}/predictions/{name}.tsv",
        attention=report(
            directory("results/{cohort}/attention/{name}"),
            patterns=["{stem}_overlay.jpg", "{stem}_top_patches.jpg"],
            caption="../report/attention.rst",
            category="Attention",
            subcategory="{cohort}",
        ),
    params:
        bundle=lambda wc: bundle_dir(wc.cohort, wc.name),
        n_patients=config["evaluate"]["attention_patients"],
        min_tissue_fraction=config["wsi"]["tiling"]["min_tissue_fraction"],
        code=CODE["score_cohort"],
    wildcard_constraints:
        cohort=_alternatives(SCORED),
    benchmark:
        "results/{cohort}/benchmarks/score_cohort_{name}.tsv"
    log:
        "results/{cohort}/logs/score_cohort_{name}.log",
    threads: 1
    resources:
        mem_mb=scaled_mem(3000),
        runtime=30,
    conda:
        "../../envs/deploy.yaml"
    script:
        "../scripts/score_cohort.py"


rule validate_external:
    input:
        predictions=lambda wc: scored_outputs(wc.cohort)["predictions"],
        manifests=lambda wc: scored_outputs(wc.cohort)["manifests"],
        clinical=lambda wc: COHORTS[wc.cohort]["clinical"],
    output:
        metrics="results/{cohort}/external/metrics.tsv",
        cindex=f"results/{{cohort}}/external/{'auc' if CURVE == 'roc' else 'cindex'}.png",
        curves=report(
            directory("results/{cohort}/external/curves"),
            patterns=["{kind}_{name}.png"],
            caption="../report/km.rst",
            category="External validation",
            subcategory="{cohort}",
        ),
    params:
        names=lambda wc: list(SCORED[wc.cohort]),
        curve=CURVE,
        evaluate=config["evaluate"],
        code=CODE["validate_external"],
    wildcard_constraints:
        cohort=_alternatives([c for c in SCORED if COHORTS[c]["clinical"] is not None]),
    benchmark:
        "results/{cohort}/benchmarks/validate_external.tsv"
    log:
        "results/{cohort}/logs/validate_external.log",
    threads: 1
    resources:
        mem_mb=scaled_mem(2000),
        runtime=20,
    conda:
        "../../envs/deploy.yaml"
    script:
        "../scripts/validate_external.py"


rule external_report:
    input:
        unpack(external_report_inputs),
    output:
        report(
            "results/{cohort}/report.html",
            caption="../report/report.rst",
            category="Report",
            subcategory="{cohort}",
        ),
    params:
        names=lambda wc: list(SCORED[wc.cohort]),
        curve=CURVE,
        config=cohort_config,
        code=CODE["external_report"],
    wildcard_constraints:
        cohort=_alternatives(SCORED),
    benchmark:
        "results/{cohort}/benchmarks/external_report.tsv"
    log:
        "results/{cohort}/logs/external_report.log",
    threads: 1
    resources:
        mem_mb=scaled_mem(2000),
        runtime=10,
    conda:
        "../../envs/deploy.yaml"
    script:
        "../scripts/external_report.py"
