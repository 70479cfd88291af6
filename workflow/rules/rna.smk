rule normalise_rna:
    input:
        unpack(rna_inputs),
        clinical=cohort_file("clinical"),
    output:
        normalised="results/{cohort}/rna/normalised.parquet",
        samples="results/{cohort}/rna/samples.tsv",
        summary="results/{cohort}/rna/summary.json",
        qc=report(
            "results/{cohort}/rna/qc.png",
            caption="../report/rna_qc.rst",
            category="RNA QC",
            subcategory="{cohort}",
        ),
    params:
        source=rna_source,
        code=CODE["normalise_rna"],
    benchmark:
        "results/{cohort}/benchmarks/normalise_rna.tsv"
    log:
        "results/{cohort}/logs/normalise_rna.log",
    threads: 2
    resources:
        mem_mb=input_scaled_mem(2000, 30),
        runtime=30,
    conda:
        "../../envs/rna.yaml"
    script:
        "../scripts/normalise_rna.py"


rule score_pathways:
    input:
        unpack(pathway_inputs),
    output:
        scores="results/{cohort}/rna/pathways_{geneset}.parquet",
        coverage="results/{cohort}/rna/pathways_{geneset}_coverage.tsv",
        heatmap=report(
            "results/{cohort}/rna/pathways_{geneset}_heatmap.png",
            caption="../report/pathway_heatmap.rst",
            category="RNA QC",
            subcategory="{cohort}",
        ),
    params:
        method=config["rna"]["score_method"],
        min_size=config["rna"]["min_size"],
        max_size=config["rna"]["max_size"],
        min_fraction=config["rna"]["min_fraction"],
        enough_genes=config["rna"]["enough_genes"],
        code=CODE["score_pathways"],
    benchmark:
        "results/{cohort}/benchmarks/score_pathways_{geneset}.tsv"
    log:
        "results/{cohort}/logs/score_pathways_{geneset}.log",
    threads: 2
    resources:
        mem_mb=input_scaled_mem(2000, 20),
        runtime=60,
    conda:
        "../../envs/rna.yaml"
    script:
        "../scripts/score_pathways.py"


rule gene_table:
    input:
        unpack(rna_inputs),
        clinical=cohort_file("clinical"),
        folds="results/{cohort}/splits/folds.tsv",
        gene_sets=lambda wc: config["genesets"][wc.geneset],
    output:
        genes="results/{cohort}/rna/genes_{geneset}.parquet",
        coverage="results/{cohort}/rna/genes_{geneset}_coverage.tsv",
    params:
        source=rna_source,
        min_size=config["rna"]["min_size"],
        min_fraction=config["rna"]["min_fraction"],
        enough_genes=config["rna"]["enough_genes"],
        code=CODE["gene_table"],
    benchmark:
        "results/{cohort}/benchmarks/gene_table_{geneset}.tsv"
    log:
        "results/{cohort}/logs/gene_table_{geneset}.log",
    threads: 2
    resources:
        mem_mb=input_scaled_mem(2000, 30),
        runtime=60,
    conda:
        "../../envs/rna.yaml"
    script:
        "../scripts/gene_table.py"
