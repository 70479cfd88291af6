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
