# rule extract_features (one generated rule per shard: extract_features_<cohort>_<k>)
# Feature extraction runs in shards: features.slides_per_job consecutive sample-sheet rows
# per job, so the model is loaded (and compiled) once per shard, while every slide keeps its
# own feature file. One job per shard needs one rule per shard (a job's outputs are fixed by
# its rule), generated here: extract_features_<cohort>_<k>. A re-run shard restores its
# unchanged slides from features/<extractor>/.reuse (histodistill.features.reuse). The
# profile's set-resources and set-threads for extract_features apply to every shard.
for (_cohort, _k), _slides in SHARDS.items():

    rule:
        name:
            SHARD_RULES[_cohort, _k]
        input:
            slides=[COHORTS[_cohort]["slides"][s]["path"] for s in _slides],
            patches=[f"results/{_cohort}/patches/{s}.h5" for s in _slides],
            weights=[config["features"]["weights"]] if config["features"]["weights"] else [],
        output:
            [f"results/{_cohort}/features/{EXTRACTOR}/{s}.h5" for s in _slides],
        params:
            slides=_slides,
            features=FEATURE_PARAMS,
            code=CODE["extract_features"],
        benchmark:
            f"results/{_cohort}/benchmarks/extract_features/{EXTRACTOR}/shard{_k}.tsv"
        log:
            f"results/{_cohort}/logs/extract_features/{EXTRACTOR}/shard{_k}.log",
        threads: SHARD_THREADS
        resources:
            **shard_resources(len(_slides)),
        conda:
            "../../envs/features.yaml"
        script:
            "../scripts/extract_features.py"


rule index_features:
    input:
        lambda wc: feature_files(wc.cohort),
    output:
        "results/{cohort}/features/{extractor}/index.tsv",
    params:
        code=CODE["index_features"],
    wildcard_constraints:
        extractor=re.escape(EXTRACTOR),
    benchmark:
        "results/{cohort}/benchmarks/index_features_{extractor}.tsv"
    log:
        "results/{cohort}/logs/index_features_{extractor}.log",
    threads: 1
    resources:
        mem_mb=scaled_mem(1000),
        runtime=10,
    conda:
        "../../envs/features.yaml"
    script:
        "../scripts/index_features.py"
