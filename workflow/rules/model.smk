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


rule train:
    input:
        unpack(train_inputs),
    output:
        model="results/{cohort}/models/{model}/fold{fold}/model.pt",
        meta="results/{cohort}/models/{model}/fold{fold}/meta.json",
        predictions="results/{cohort}/models/{model}/fold{fold}/predictions.tsv",
        history="results/{cohort}/models/{model}/fold{fold}/history.tsv",
    params:
        train=config["train"],
        tune=config["tune"],
        task=config["task"],
        privileged=config["privileged"],
        code=CODE["train"],
    benchmark:
        "results/{cohort}/benchmarks/train/{model}_fold{fold}.tsv"
    log:
        "results/{cohort}/logs/train/{model}_fold{fold}.log",
    threads: 1
    # measured: 2.25 GB peak without the feature cache for 15,000 x 1,024 bags (RESULTS.md)
    resources:
        mem_mb=scaled_mem(3000 + int(config["train"]["cache_mb"])),
        runtime=120,
        gpu=0,
    conda:
        "../../envs/model.yaml"
    script:
        "../scripts/train.py"
