rule extract_features:
    input:
        slide=slide_path,
        patches="results/{cohort}/patches/{slide}.h5",
        weights=[config["features"]["weights"]] if config["features"]["weights"] else [],
    output:
        "results/{cohort}/features/{extractor}/{slide}.h5",
    params:
        features=config["features"],
        code=CODE["extract_features"],
    wildcard_constraints:
        extractor=re.escape(EXTRACTOR),
    benchmark:
        "results/{cohort}/benchmarks/extract_features/{extractor}/{slide}.tsv"
    log:
        "results/{cohort}/logs/extract_features/{extractor}/{slide}.log",
    threads: 1
    resources:
        mem_mb=scaled_mem(4000),
        runtime=60,
        gpu=0,
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
