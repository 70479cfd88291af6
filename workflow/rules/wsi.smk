# One job per slide for segmentation and tiling (CLAM's create_patches does the same): both
# read the slide at thumbnail resolution and take seconds, and one job instead of two keeps
# the DAG of a 3,000-slide config small (benchmarks/dag_dryrun.py). A change of either the
# segmentation or the tiling parameters re-runs this job, then only what depends on it.
rule segment_and_tile:
    input:
        slide=slide_path,
    output:
        geojson="results/{cohort}/tissue/{slide}.geojson",
        tissue_qc=report(
            "results/{cohort}/qc/{slide}_tissue.png",
            caption="../report/tissue_qc.rst",
            category="Slide QC",
            subcategory="{cohort}",
        ),
        patches="results/{cohort}/patches/{slide}.h5",
        tiles_qc=report(
            "results/{cohort}/qc/{slide}_tiles.png",
            caption="../report/tiles_qc.rst",
            category="Slide QC",
            subcategory="{cohort}",
        ),
    params:
        segmentation=config["wsi"]["segmentation"],
        tiling=config["wsi"]["tiling"],
        mpp=slide_mpp,
        code=CODE["segment_and_tile"],
    benchmark:
        "results/{cohort}/benchmarks/segment_and_tile/{slide}.tsv"
    log:
        "results/{cohort}/logs/segment_and_tile/{slide}.log",
    threads: 1
    resources:
        mem_mb=scaled_mem(2000),
        runtime=20,
    conda:
        "../../envs/wsi.yaml"
    script:
        "../scripts/segment_and_tile.py"
