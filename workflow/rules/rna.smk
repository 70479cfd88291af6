rule normalise_rna:
    input:
        counts=cohort_file("rna_counts"),
        clinical=cohort_file("clinical"),
    output:
        normalised="results/{cohort}/rna/normalised.parquet",
        size_factors="results/{cohort}/rna/size_factors.tsv",
        qc=report(
            "results/{cohort}/rna/qc.png",
            caption="../report/rna_qc.rst",
            category="RNA QC",
            subcategory="{cohort}",
        ),
    params:
        min_total_count=config["rna"]["min_total_count"],
        code=CODE["rna"],
    benchmark:
        "results/{cohort}/benchmarks/normalise_rna.tsv"
    log:
        "results/{cohort}/logs/normalise_rna.log",
    threads: 1
    resources:
        mem_mb=scaled_mem(4000),
        runtime=30,
    conda:
        "../../envs/rna.yaml"
    script:
        "../scripts/normalise_rna.py"


rule score_pathways:
    input:
        normalised="results/{cohort}/rna/normalised.parquet",
        gmt=lambda wc: config["genesets"][wc.geneset],
    output:
        scores="results/{cohort}/rna/pathways_{geneset}.parquet",
        coverage="results/{cohort}/rna/pathways_{geneset}_coverage.tsv",
    params:
        method=config["rna"]["score_method"],
        min_size=config["rna"]["min_size"],
        max_size=config["rna"]["max_size"],
        code=CODE["pathways"],
    benchmark:
        "results/{cohort}/benchmarks/score_pathways_{geneset}.tsv"
    log:
        "results/{cohort}/logs/score_pathways_{geneset}.log",
    threads: 1
    resources:
        mem_mb=scaled_mem(4000),
        runtime=30,
    conda:
        "../../envs/rna.yaml"
    script:
        "../scripts/score_pathways.py"
