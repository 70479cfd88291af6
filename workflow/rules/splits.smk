# Patient-level cross-validation folds, stratified and grouped by patient (histodistill/splits.py).
rule make_splits:
    input:
        clinical=cohort_file("clinical"),
        samples=cohort_file("samples"),
    output:
        "results/{cohort}/splits/folds.tsv",
    params:
        splits=config["splits"],
        task=config["task"],
        code=CODE["make_splits"],
    benchmark:
        "results/{cohort}/benchmarks/make_splits.tsv"
    log:
        "results/{cohort}/logs/make_splits.log",
    threads: 1
    resources:
        mem_mb=scaled_mem(1000),
        runtime=5,
    conda:
        "../../envs/model.yaml"
    script:
        "../scripts/make_splits.py"
