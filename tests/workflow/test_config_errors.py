"""A wrong key or a missing file is a clear error before any job starts."""

from __future__ import annotations

from workflow_helpers import planned_jobs, snakemake, tiny_config, tiny_demo


def test_unknown_key_is_rejected_before_any_job(tmp_path):
    config = tiny_config(a=tiny_demo(4))
    config["train"]["epoch"] = 3  # typo of epochs
    proc = snakemake(tmp_path, config, "--dry-run", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Additional properties are not allowed ('epoch' was unexpected)" in out
    assert not (tmp_path / "results").exists()
    config = tiny_config(a=tiny_demo(4))
    config["features"]["num_workers"] = "many"  # a count or 'auto'
    proc = snakemake(tmp_path, config, "--dry-run", check=False)
    assert proc.returncode != 0 and "'many' is not valid under any of the given schemas" in \
        proc.stdout + proc.stderr


def test_missing_sheet_names_the_file(tmp_path):
    config = tiny_config(real={"samples": str(tmp_path / "nope.tsv"),
                               "clinical": str(tmp_path / "clinical.tsv"),
                               "rna": {"path": str(tmp_path / "counts.tsv")}})
    (tmp_path / "counts.tsv").write_text("gene\tP1\nG1\t1\n")
    (tmp_path / "clinical.tsv").write_text("patient\ttime\tevent\nP1\t3\t1\n")
    proc = snakemake(tmp_path, config, "--dry-run", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "nope.tsv" in out and "does not exist" in out


def test_duplicate_slide_ids_are_rejected(tmp_path):
    (tmp_path / "s.svs").write_bytes(b"x")
    (tmp_path / "samples.tsv").write_text("patient\tslide\tpath\nP1\tS1\ts.svs\nP1\tS1\ts.svs\n")
    (tmp_path / "clinical.tsv").write_text("patient\ttime\tevent\nP1\t3\t1\n")
    (tmp_path / "counts.tsv").write_text("gene\tP1\nG1\t1\n")
    config = tiny_config(real={"samples": str(tmp_path / "samples.tsv"),
                               "clinical": str(tmp_path / "clinical.tsv"),
                               "rna": {"path": str(tmp_path / "counts.tsv")}})
    proc = snakemake(tmp_path, config, "--dry-run", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "cohort 'real'" in out and "slide IDs must be unique" in out


def _real_rna_cohort(tmp_path, rna):
    (tmp_path / "s.svs").write_bytes(b"x")
    (tmp_path / "samples.tsv").write_text("patient\tslide\tpath\nP1\tS1\ts.svs\n")
    (tmp_path / "clinical.tsv").write_text("patient\ttime\tevent\nP1\t3\t1\n")
    return tiny_config(real={"samples": str(tmp_path / "samples.tsv"),
                             "clinical": str(tmp_path / "clinical.tsv"), "rna": rna})


def test_rna_block_is_validated_before_any_job(tmp_path):
    config = _real_rna_cohort(tmp_path, {"path": str(tmp_path / "tpm.tsv"), "kind": "TPM"})
    (tmp_path / "tpm.tsv").write_text("gene\tP1\nG1\t1\n")
    proc = snakemake(tmp_path, config, "--dry-run", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "'TPM' is not one of" in out
    config = _real_rna_cohort(tmp_path, {"path": str(tmp_path / "tpm.tsv"),
                                         "gene_map": str(tmp_path / "nope.tsv")})
    proc = snakemake(tmp_path, config, "--dry-run", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "rna.gene_map file" in out and "nope.tsv" in out


def test_gsva_scores_after_the_folds_exist(tmp_path):
    config = tiny_config(a=tiny_demo(4))
    config["rna"] = {"score_method": "gsva"}
    jobs = {rule for rule, _ in planned_jobs(tmp_path, config)}
    assert {"make_splits", "score_pathways"} <= jobs
    proc = snakemake(tmp_path, config, "--dry-run", "--forceall", "--printshellcmds",
                     "-R", "score_pathways", check=False)
    assert "results/a/splits/folds.tsv" in proc.stdout.split("rule score_pathways:")[1].split(
        "rule ")[0]


def test_binary_task_is_checked_at_parse_time_and_plans_roc_curves(tmp_path):
    config = _real_rna_cohort(tmp_path, {"path": str(tmp_path / "tpm.tsv"), "kind": "tpm"})
    (tmp_path / "tpm.tsv").write_text("gene\tP1\nG1\t1\n")
    config["task"] = {"type": "binary", "endpoint": "node"}
    proc = snakemake(tmp_path, config, "--dry-run", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "task.endpoint 'node' is not a column" in out
    assert "clinical.tsv" in out
    config["task"] = {"type": "binary"}
    proc = snakemake(tmp_path, config, "--dry-run", check=False)
    assert proc.returncode != 0 and "needs task.endpoint" in proc.stdout + proc.stderr
    config = tiny_config(a=tiny_demo(4))
    config["task"] = {"type": "binary", "endpoint": "metastasis"}
    config["privileged"] = {"source": "both", "covariates": ["age", "grade"]}
    jobs = planned_jobs(tmp_path, config)
    assert ("evaluate", (("cohort", "a"),)) in jobs
    proc = snakemake(tmp_path, config, "--dry-run", "--printshellcmds", check=False)
    assert "plots/roc_wsi_abmil.png" in proc.stdout and "km_" not in proc.stdout


def test_privileged_covariates_must_be_numeric_columns(tmp_path):
    config = _real_rna_cohort(tmp_path, {"path": str(tmp_path / "tpm.tsv"), "kind": "tpm"})
    (tmp_path / "tpm.tsv").write_text("gene\tP1\nG1\t1\n")
    (tmp_path / "clinical.tsv").write_text("patient\ttime\tevent\tgrade\nP1\t3\t1\thigh\n")
    config["privileged"] = {"source": "clinical", "covariates": ["grade"]}
    proc = snakemake(tmp_path, config, "--dry-run", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "covariate grade = 'high' is not a number" in out


def test_gene_level_privileged_vector_plans_the_per_fold_gene_table(tmp_path):
    config = tiny_config(a=tiny_demo(4))
    config["privileged"] = {"source": "genes"}
    proc = snakemake(tmp_path, config, "--dry-run", check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and ("mope_teacher, mope, mope_teacher_permuted, "
                                     "mope_permuted use one expert per pathway") in out
    config["models"] = ["rna_snn", "ghanet"]
    jobs = planned_jobs(tmp_path, config)
    assert ("gene_table", (("cohort", "a"), ("geneset", "hallmark"))) in jobs
    proc = snakemake(tmp_path, config, "--dry-run", "--printshellcmds", check=False)
    train = proc.stdout.split("rule train:")[1].split("rule ")[0]
    assert "rna/genes_hallmark.parquet" in train
