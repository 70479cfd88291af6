rule segment_tissue:
    input:
        slide=slide_path,
    output:
        geojson="results/{cohort}/tissue/{slide}.geojson",
        qc=report(
            "results/{cohort}/qc/{slide}_tissue.png",
            caption="../report/tissue_qc.rst",
            category="Slide QC",
            subcategory="{cohort}",
        ),
    params:
        segmentation=config["wsi"]["segmentation"],
        mpp=slide_mpp,
        code=CODE["segment"],
    benchmark:
        "results/{cohort}/benchmarks/segment_tissue/{slide}.tsv"
    log:
        "results/{cohort}/logs/segment_tissue/{slide}.log",
    threads: 1
    resources:
        mem_mb=scaled_mem(2000),
        runtime=15,
    conda:
        "../../envs/wsi.yaml"
    script:
        "../scripts/segment_tissue.py"


rule tile_slide:
    input:
        slide=slide_path,
        tissue="results/{cohort}/tissue/{slide}.geojson",
        tissue_qc="results/{cohort}/qc/{slide}_tissue.png",
    output:
        patches="results/{cohort}/patches/{slide}.h5",
        qc=report(
            "results/{cohort}/qc/{slide}_tiles.png",
            caption="../report/tiles_qc.rst",
            category="Slide QC",
            subcategory="{cohort}",
        ),
    params:
        tiling=config["wsi"]["tiling"],
        mpp=slide_mpp,
        code=CODE["tile"],
    benchmark:
        "results/{cohort}/benchmarks/tile_slide/{slide}.tsv"
    log:
        "results/{cohort}/logs/tile_slide/{slide}.log",
    threads: 1
    resources:
        mem_mb=scaled_mem(2000),
        runtime=15,
    conda:
        "../../envs/wsi.yaml"
    script:
        "../scripts/tile_slide.py"
