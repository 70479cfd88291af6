"""RNA: tables are read and checked, DESeq2 matches R, pathway scores are sample-wise."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from conftest import HALLMARK, REPO, TEST_DATA, shared_file, write_table
from histodistill.errors import InputError
from histodistill.rna.gmt import read_gene_sets, read_gmt
from histodistill.rna.normalise import deseq2_vst, normalise
from histodistill.rna.pathways import pathway_scores, score_pathways, usable_gene_sets
from histodistill.rna.table import RnaSource, read_expression

DESEQ2 = TEST_DATA / "deseq2"
REACTOME = REPO / "resources" / "genesets" / "ReactomePathways_2024-09-18.gmt"
PATIENTS = ["S1", "S2", "S3"]
_SYNTHETIC = [f"sample{i}" for i in range(1, 101)]  # the DESeq2 reference's sample IDs


def _read(path, kind="auto", orientation="auto", gene_map=None, patients=PATIENTS, **keys):
    return read_expression(RnaSource(str(path), kind, orientation, gene_map, **keys), patients)


def test_counts_duplicates_and_htseq_star_rows(tmp_path):
    path = write_table(tmp_path / "c.tsv", "gene|S1|S2\nG1|1|2\nG2|3|4\nG1|10|20\n"
                       "__no_feature|5|5\nN_unmapped|7|7\n")
    expr = _read(path)
    assert expr.kind == "counts" and expr.values.dtypes.unique().tolist() == [np.int64]
    assert list(expr.values.index) == ["S1", "S2"] and list(expr.values.columns) == ["G1", "G2"]
    assert expr.values.loc["S1", "G1"] == 11  # duplicated gene rows of counts are summed
    assert any("summary rows dropped" in n for n in expr.notes)


def test_samples_x_genes_is_detected_and_featurecounts_layout_read(tmp_path):
    path = write_table(tmp_path / "t.tsv", "sample|TP53|EGFR\nS1|1|2\nS2|3|4\nS3|5|6\n")
    expr = _read(path)
    assert list(expr.values.index) == PATIENTS and expr.values.loc["S3", "EGFR"] == 6
    assert "orientation detected: samples_x_genes" in expr.notes
    fc = write_table(tmp_path / "fc.tsv", "# Program:featureCounts v2.0.1\n"
                     "Geneid|Chr|Start|End|Strand|Length|S1|S2\n"
                     "TP53|chr17|1|9|-|9|5|6\nEGFR|chr7|1|9|+|9|7|8\n")
    expr = _read(fc)
    assert list(expr.values.columns) == ["TP53", "EGFR"] and expr.values.loc["S2", "EGFR"] == 8


def test_ensembl_ids_lose_versions_and_map_through_gene_name_or_map(tmp_path):
    gdc = write_table(tmp_path / "gdc.tsv",
                      "gene_id|gene_name|gene_type|S1|S2\n"
                      "N_unmapped|||9|9\n"
                      "ENSG00000141510.16|TP53|protein_coding|10|20\n"
                      "ENSG00000146648.18|EGFR|protein_coding|1|2\n"
                      "ENSG00000280000.1|EGFR|protein_coding|3|3\n"
                      "ENSG00000002586.20_PAR_Y|CD99|protein_coding|0|0\n")
    expr = _read(gdc)
    assert sorted(expr.values.columns) == ["EGFR", "TP53"]
    assert expr.values.loc["S1", "EGFR"] == 4  # two Ensembl IDs of one symbol: counts summed
    assert any("_PAR_Y" in n for n in expr.notes)
    bare = write_table(tmp_path / "ens.tsv", "gene|S1|S2\nENSG00000141510.16|1.5|2\n"
                       "ENSG00000146648|0.5|3\nENSG00000999999|1|1\n")
    with pytest.raises(InputError, match="Ensembl.*rna.gene_map"):
        _read(bare, kind="tpm")
    gmap = write_table(tmp_path / "map.tsv", "gene_id|symbol\nENSG00000141510.15|TP53\n"
                       "ENSG00000146648|EGFR\n")
    expr = _read(bare, kind="tpm", gene_map=str(gmap))
    assert sorted(expr.values.columns) == ["EGFR", "TP53"]
    assert any("1 without a symbol dropped" in n for n in expr.notes)


def test_duplicated_normalised_genes_keep_the_highest_mean_row(tmp_path):
    path = write_table(tmp_path / "z.tsv", "gene|S1|S2\nA|0.1|0.3\nA|2|4\nB|-1|1\n")
    expr = _read(path, kind="zscore")
    assert expr.values.loc["S2", "A"] == 4 and expr.values.shape == (2, 2)


@pytest.mark.parametrize("body, kind, message", [
    ("gene|S1|S2\nG1|1.5|2\n", "counts", "non-integer.*gene 'G1', sample 'S1'.*TPM/FPKM"),
    ("gene|S1|S2\nG1|1.5|2\n", "auto", "not raw counts.*set rna.kind"),
    ("gene|S1|S2\nG1|-1|2\n", "counts", "negative.*gene 'G1', sample 'S1'"),
    ("gene|S1|S2\nG1|-1|2\n", "tpm", "negative.*tpm cannot be negative"),
    ("gene|S1|S2\nG1||2\nG2|1|1\n", "log2", "missing \\(NaN\\).*sample 'S1'"),
    ("gene|S1|S2\nG1|a|2\n", "counts", "column 'S1' is not numeric \\(row 'G1'"),
    ("gene|S1|S1\nG1|1|2\n", "counts", "patient 'S1' has 2 RNA samples.*duplicate_samples"),
    ("gene|S1|S2\nG1|inf|2\n", "log2", "infinite.*gene 'G1', sample 'S1'.*pseudocount"),
    ("gene|S1|S2\nG1|1|-inf\n", "auto", "infinite.*gene 'G1', sample 'S2'"),
    ("gene|S1|S2\nG1|3|2\nG2|4|-3\n", "auto",
     "every value is an integer.*negative.*gene 'G2', sample 'S2' = -3.*check that cell"),
    ("gene|S1|S2\nG1|0|2\nG2|0|1\n", "counts", "no counts at all: S1"),
    ("gene|S1|S2\nG1||2\nG2||1\n", "zscore", "no values at all: S1"),
    ("gene|X1|X2\nG1|1|2\n", "counts", "neither rows nor columns.*rna.orientation"),
    ("S1|S1|S2\nS2|1|2\n", "counts", "both the rows and the columns"),
])
def test_bad_tables_name_row_and_column(tmp_path, body, kind, message):
    with pytest.raises(InputError, match=message):
        _read(write_table(tmp_path / "c.tsv", body), kind=kind)


def test_samples_of_no_patient_are_left_out_and_listed_or_an_error(tmp_path, caplog):
    path = write_table(tmp_path / "c.tsv", "gene|S1|X9|S2|X8\nG1|1|2|3|4\nG2|5|6|7|8\n")
    expr = _read(path)
    assert list(expr.values.index) == ["S1", "S2"] and expr.left_out == ["X9", "X8"]
    assert any("2 RNA samples of no patient" in n and "X9" in n for n in expr.notes)
    assert "match no patient" in caplog.text and "without RNA: S3" in caplog.text
    with pytest.raises(InputError, match="2 RNA samples match no patient.*X9, X8.*without RNA: "
                                         "S3.*extra_samples: drop"):
        _read(path, extra_samples="error")


def test_several_samples_of_a_patient_are_named_or_aggregated(tmp_path):
    rows = write_table(tmp_path / "rows.tsv", "sample|TP53|EGFR\nS1|1|2\nS2|3|4\nS1|5|6\n")
    with pytest.raises(InputError, match="patient 'S1' has 2 RNA samples \\('S1', 'S1'\\)"):
        _read(rows)
    counts = _read(rows, duplicate_samples="aggregate")
    assert counts.values.loc["S1"].tolist() == [6, 8] and counts.values.shape == (2, 2)
    assert any("1 patients with several RNA samples combined" in n for n in counts.notes)
    tpm = _read(rows, kind="tpm", duplicate_samples="aggregate").values
    assert tpm.loc["S1", "TP53"] == pytest.approx(2 ** ((1 + np.log2(6)) / 2) - 1)
    z = _read(rows, kind="zscore", duplicate_samples="aggregate").values
    assert z.loc["S1", "EGFR"] == pytest.approx(4.0) and z.loc["S2", "EGFR"] == 4


TCGA = ["TCGA-A1-A0SB", "TCGA-A2-A04P", "TCGA-AO-A12D"]


def test_sample_barcodes_are_detected_and_mapped_to_patients(tmp_path):
    path = write_table(tmp_path / "b.tsv",
                       "gene|TCGA-A1-A0SB-01A-11R-A144-07|TCGA-A2-A04P-01A-31R-A034-07|"
                       "TCGA-A2-A04P-01B-11R-A034-07|TCGA-ZZ-ZZZZ-01A\nG1|1|2|3|9\nG2|4|5|6|9\n")
    with pytest.raises(InputError, match="'TCGA-A1-A0SB-01A-11R-A144-07', patient "
                                         "'TCGA-A1-A0SB'.*sample barcodes.*"
                                         "patient_from_sample: tcga"):
        _read(path, patients=TCGA)
    with pytest.raises(InputError, match="patient 'TCGA-A2-A04P' has 2 RNA samples"):
        _read(path, patients=TCGA, patient_from_sample="tcga")
    expr = _read(path, patients=TCGA, patient_from_sample="tcga", duplicate_samples="aggregate")
    assert list(expr.values.index) == TCGA[:2] and expr.values.loc[TCGA[1], "G1"] == 5
    assert expr.left_out == ["TCGA-ZZ-ZZZZ-01A"]
    mapped = _read(path, patients=TCGA, patient_from_sample=r"^(.+?)-\d\d[A-Z]",
                   duplicate_samples="aggregate")
    assert mapped.values.equals(expr.values)
    with pytest.raises(InputError, match="patient_from_sample.*needs a group"):
        RnaSource.from_config({"path": "x", "patient_from_sample": "^TCGA"})
    with pytest.raises(InputError, match="duplicate_samples must be error or aggregate"):
        RnaSource.from_config({"path": "x", "duplicate_samples": "mean"})


def test_ids_that_differ_only_by_case_are_named(tmp_path, caplog):
    path = write_table(tmp_path / "c.tsv", "gene|s1|s2\nG1|1|2\n")
    with pytest.raises(InputError, match="upper/lower case.*sample 's1', patient 'S1'"):
        _read(path)
    partly = write_table(tmp_path / "p.tsv", "gene|S1|s2\nG1|1|2\n")
    assert _read(partly).left_out == ["s2"] and "sample 's2', patient 'S2'" in caplog.text


@pytest.mark.parametrize("name, sep", [("tabs.csv", "\t"), ("semi.csv", ";"),
                                       ("commas.txt", ","), ("commas.tsv.gz", ",")])
def test_the_delimiter_is_detected_whatever_the_extension(tmp_path, name, sep):
    path = tmp_path / name
    text = sep.join(["gene", "S1", "S2", "S3"]) + "\n" + sep.join(["G1", "1", "2", "3"]) + "\n"
    if name.endswith(".gz"):
        import gzip

        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    assert _read(path).values["G1"].tolist() == [1, 2, 3]


def test_a_one_column_table_says_which_delimiters_were_tried(tmp_path):
    path = tmp_path / "one.csv"
    path.write_text("gene S1 S2\nG1 1 2\n")
    with pytest.raises(InputError, match="one column with tab, comma and semicolon.*'gene S1 S2'"):
        _read(path)


def test_deseq2_matches_r_reference():
    """R DESeq2 1.34.0: estimateSizeFactors and blind parametric VST on PyDESeq2's data."""
    counts = read_expression(RnaSource(str(DESEQ2 / "synthetic_counts.csv"),
                                       orientation="genes_x_samples"), _SYNTHETIC).values
    vst, sf = deseq2_vst(counts)
    r_sf = pd.read_csv(DESEQ2 / "r_size_factors.csv", index_col=0)["x"]
    r_vst = pd.read_csv(DESEQ2 / "r_vst_blind_parametric.csv", index_col=0).T
    np.testing.assert_allclose(sf.to_numpy(), r_sf.loc[sf.index].to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(vst.to_numpy(), r_vst.loc[vst.index, vst.columns].to_numpy(),
                               atol=2e-4)


def test_vst_fitted_on_training_samples_transforms_the_rest():
    counts = read_expression(RnaSource(str(DESEQ2 / "synthetic_counts.csv"),
                                       orientation="genes_x_samples"), _SYNTHETIC).values
    train = list(counts.index[:70])
    frozen, sf = deseq2_vst(counts, fit_on=train)
    alone, sf_alone = deseq2_vst(counts.loc[train])
    np.testing.assert_allclose(frozen.loc[train].to_numpy(), alone.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(sf.loc[train].to_numpy(), sf_alone.to_numpy(), rtol=1e-12)
    assert np.isfinite(frozen.to_numpy()).all()


@pytest.mark.realdata
@pytest.mark.parametrize("name, n_genes, n_samples", [
    ("airway_gene_counts.tsv.gz", 64102, 8), ("pasilla_gene_counts.tsv", 14599, 7)])
def test_real_counts_normalise(name, n_genes, n_samples, tmp_path):
    path = shared_file("real_counts", name)
    head = pd.read_csv(path, sep="\t", usecols=[0])
    header = pd.read_csv(path, sep="\t", nrows=0).columns[1:].tolist()
    source = RnaSource(str(path))
    if name.startswith("airway"):  # Ensembl IDs: refused without a map, read with one
        with pytest.raises(InputError, match="Ensembl.*rna.gene_map"):
            read_expression(source, header)
        ids = head.iloc[:, 0]
        pd.DataFrame({"gene_id": ids, "symbol": "SYM_" + ids}).to_csv(
            tmp_path / "map.tsv", sep="\t", index=False)
        source = RnaSource(str(path), gene_map=str(tmp_path / "map.tsv"))
    expr = read_expression(source, header)
    assert expr.kind == "counts" and expr.values.shape[0] == n_samples
    counts = expr.values.loc[:, expr.values.sum() > 0]
    assert counts.shape[1] > 0.5 * n_genes * 0.5
    vst, sf = deseq2_vst(counts)
    assert np.isfinite(vst.to_numpy()).all()
    assert np.corrcoef(sf, counts.sum(axis=1))[0, 1] > 0.8  # size factors track depth
    if name.startswith("airway"):  # the MANIFEST's library sizes, to the read
        assert counts.sum(axis=1).tolist()[:3] == [20637971, 18809481, 25348649]


def test_pathway_scores_do_not_depend_on_other_patients(tiny_cohort, tmp_path):
    """End to end: normalise + score a cohort and a sub-cohort; shared patients' scores agree
    exactly, so no cohort-level fit (size factors, VST, gene filter) reaches the models."""
    folder, _, _ = tiny_cohort
    table = pd.read_csv(folder / "rna_counts.tsv", sep="\t", index_col=0)
    clinical = pd.read_csv(folder / "clinical.tsv", sep="\t")
    sub = table.iloc[:, :4]
    assert (sub.sum(axis=1) < 10).any()  # genes a "total >= 10 reads" filter would drop
    sub.to_csv(tmp_path / "sub.tsv", sep="\t")
    clinical[clinical.patient.isin(sub.columns)].to_csv(tmp_path / "clin.tsv", sep="\t",
                                                          index=False)
    scores = {}
    for tag, counts, clin in (("full", folder / "rna_counts.tsv", folder / "clinical.tsv"),
                              ("sub", tmp_path / "sub.tsv", tmp_path / "clin.tsv")):
        d = tmp_path / tag
        normalise(RnaSource(str(counts)), clin, d / "n.parquet", d / "s.tsv", d / "s.json",
                  d / "qc.png")
        expr = pd.read_parquet(d / "n.parquet")
        sets = {k: v for k, v in read_gmt(HALLMARK).items() if k.endswith(("E2F_TARGETS",
                                                                             "HYPOXIA"))}
        scores[tag] = pathway_scores(expr, sets, "ssgsea")
    np.testing.assert_allclose(scores["sub"].to_numpy(),
                               scores["full"].loc[scores["sub"].index].to_numpy(), rtol=1e-9)


def test_normalise_and_score_recover_planted_programmes(tiny_cohort, tmp_path):
    folder, spec, plan = tiny_cohort
    normalise(RnaSource(str(folder / "rna_counts.tsv")), folder / "clinical.tsv",
              tmp_path / "n.parquet", tmp_path / "s.tsv", tmp_path / "s.json",
              tmp_path / "qc.png")
    score_pathways(tmp_path / "n.parquet", HALLMARK, folder / "clinical.tsv",
                   tmp_path / "p.parquet", tmp_path / "cov.tsv", tmp_path / "heat.png")
    scores = pd.read_parquet(tmp_path / "p.parquet")
    assert set(scores.index) == set(plan.patients) - plan.rna_missing
    truth = pd.read_csv(folder / "ground_truth.tsv", sep="\t", index_col=0)
    for prog in spec.programmes:
        r = np.corrcoef(scores[prog.pathway], truth.loc[scores.index, f"z_{prog.name}"])[0, 1]
        assert r > 0.8, prog
    coverage = pd.read_csv(tmp_path / "cov.tsv", sep="\t")
    assert {"gene_set", "n_genes", "n_found", "fraction_found", "used"} <= set(coverage.columns)
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["kind"] == "counts" and sorted(summary["patients_without_rna"]) == sorted(
        plan.rna_missing)
    samples = pd.read_csv(tmp_path / "s.tsv", sep="\t")
    assert (samples["size_factor"] > 0).all() and (samples["total"] > 0).all()
    for png in ("qc.png", "heat.png"):
        assert (tmp_path / png).stat().st_size > 5000


def test_tpm_and_zscore_tables_skip_deseq2(tmp_path):
    rng = np.random.default_rng(0)
    genes = [g for g in read_gmt(HALLMARK)["HALLMARK_HYPOXIA"]][:120]
    tpm = pd.DataFrame(rng.gamma(1.0, 20.0, (len(genes), 4)), index=genes,
                       columns=[*PATIENTS, "EXTRA-1"])
    tpm.to_csv(tmp_path / "tpm.csv")
    write_table(tmp_path / "clin.tsv", "patient|time|event\nS1|3|1\nS2|5|0\nS3|7|1\n")
    normalise(RnaSource(str(tmp_path / "tpm.csv"), kind="tpm"), tmp_path / "clin.tsv",
              tmp_path / "n.parquet", tmp_path / "s.tsv", tmp_path / "s.json", tmp_path / "q.png")
    out = pd.read_parquet(tmp_path / "n.parquet")
    np.testing.assert_allclose(out.to_numpy(), np.log2(tpm[PATIENTS].T.to_numpy() + 1))
    summary = json.loads((tmp_path / "s.json").read_text())
    assert summary["transform"] == "log2(x + 1)" and summary["samples_left_out"] == ["EXTRA-1"]
    assert any("EXTRA-1" in note for note in summary["notes"])  # the report lists the notes


def test_gene_set_files(tmp_path):
    with pytest.raises(InputError, match="appears twice"):
        read_gmt(write_table(tmp_path / "a.gmt", "S1|d|A|B\nS1|d|C\n"))
    with pytest.raises(InputError, match="line 1"):
        read_gmt(write_table(tmp_path / "b.gmt", "S1|only\n"))
    with pytest.raises(InputError, match=".gmt file or a .csv/.tsv"):
        read_gene_sets(tmp_path / "sets.xlsx")
    assert len(read_gmt(HALLMARK)) == 50 and "HALLMARK_HYPOXIA" in read_gmt(HALLMARK)
    reactome = read_gene_sets(REACTOME)
    assert len(reactome) == 2694 and all(reactome.values())
    families = read_gene_sets(write_table(tmp_path / "f.tsv", "Onco|TSG\nMYC|TP53\nKRAS|\n"))
    assert families == {"Onco": ["MYC", "KRAS"], "TSG": ["TP53"]}


def test_a_small_panel_keeps_large_sets_and_says_what_it_drops(tmp_path, caplog):
    """A 2,000-gene panel's view of Hallmark: sets with >= enough_genes present are scored
    whatever their share; those dropped for their share are listed with the setting that
    would keep them."""
    caplog.set_level("INFO")
    sets = read_gmt(HALLMARK)
    rng = np.random.default_rng(0)
    universe = sorted({g for genes in sets.values() for g in genes})
    panel = pd.Index(rng.choice(universe, size=len(universe) // 5, replace=False))
    emt = sets["HALLMARK_EPITHELIAL_MESENCHYMAL_TRANSITION"]
    panel = panel.difference(emt).append(pd.Index(emt[:40]))  # 40 of 200: 20%
    coverage, used = usable_gene_sets(HALLMARK, panel, 15, 500, 0.25, "panel.tsv")
    row = coverage.set_index("gene_set").loc["HALLMARK_EPITHELIAL_MESENCHYMAL_TRANSITION"]
    assert row["n_found"] == 40 and row["fraction_found"] < 0.25 and row["used"]
    assert "HALLMARK_EPITHELIAL_MESENCHYMAL_TRANSITION" in used
    strict, _ = usable_gene_sets(HALLMARK, panel, 15, 500, 0.25, "panel.tsv", enough_genes=500)
    assert not strict.set_index("gene_set").loc["HALLMARK_EPITHELIAL_MESENCHYMAL_TRANSITION",
                                                "used"]
    by_share = strict.loc[strict["dropped_because"] == "under 25% of its genes present"]
    assert len(by_share) and (by_share["n_found"] >= 15).all()
    assert f"{len(by_share)} sets have enough genes" in caplog.text
    lowest = np.floor(100 * by_share["fraction_found"].min()) / 100
    assert f"rna.min_fraction: {lowest:.2f} would score them" in caplog.text
    assert f"{int(coverage['used'].sum())} of 50 gene sets of" in caplog.text
    kept, _ = usable_gene_sets(HALLMARK, panel, 15, 500, float(lowest), "p", enough_genes=500)
    assert kept["used"].sum() == strict["used"].sum() + len(by_share)


@pytest.mark.realdata
def test_mcat_gene_families_score_on_tcga_zscores(tmp_path):
    """MCAT's six families on the real BLCA z-score table (MCAT layout: *_rnaseq columns)."""
    families = read_gene_sets(shared_file("tcga", "mcat", "signatures.csv"))
    assert len(families) == 6 and sum(map(len, families.values())) >= 3000
    table = pd.read_csv(shared_file("tcga", "mcat", "tcga_blca_all_clean.sig.csv.gz"))
    rna = table.drop_duplicates("case_id").set_index("case_id")
    rna = rna[[c for c in rna.columns if c.endswith("_rnaseq")]]
    rna.columns = [c.removesuffix("_rnaseq") for c in rna.columns]
    rna.iloc[:40].to_csv(tmp_path / "z.csv")
    expr = read_expression(RnaSource(str(tmp_path / "z.csv"), kind="zscore"),
                           list(rna.index[:40]))
    assert expr.values.shape == (40, rna.shape[1])
    assert any("z-scores are used as given" in n for n in expr.notes)
    scores = pathway_scores(expr.values, families, "ssgsea", min_size=5, max_size=2000)
    assert scores.shape == (40, 6) and np.isfinite(scores.to_numpy()).all()


def test_gsva_is_fitted_inside_each_fold(tiny_pipeline):
    """GSVA's per-gene kernel CDFs are a fit: a held-out patient's score depends on the fold's
    training part and on that patient only, never on the other held-out patients."""
    from histodistill.rna.pathways import gsva_by_fold, load_scores

    expr = pd.read_parquet(tiny_pipeline["dir"] / "n.parquet")
    sets = {k: v for k, v in read_gmt(HALLMARK).items() if k.endswith(("E2F_TARGETS",
                                                                         "HYPOXIA"))}
    folds = pd.read_csv(tiny_pipeline["folds"], sep="\t")
    scores = gsva_by_fold(expr, sets, folds, 5, 500)
    assert scores.index.names == ["fold", "patient", "held_out"]
    assert list(scores.columns) == list(sets)
    rows = folds[(folds.fold == 0) & folds.patient.isin(expr.index)]
    test = rows.loc[rows.role == "test", "patient"].tolist()
    reference = rows.loc[rows.role != "test", "patient"].tolist()
    assert len(test) >= 2
    altered = expr.copy()
    altered.loc[test[1]] = altered.loc[test[1]].to_numpy()[::-1]  # scramble another patient
    again = gsva_by_fold(altered, sets, folds[folds.fold == 0], 5, 500)
    np.testing.assert_allclose(again.loc[(0, test[0], True)], scores.loc[(0, test[0], True)],
                               rtol=1e-12)
    alone = pathway_scores(expr.loc[reference], sets, "gsva", 5, 500)
    fold0 = scores.xs(0, level="fold").droplevel("held_out")
    np.testing.assert_allclose(fold0.loc[reference], alone, rtol=1e-12)
    path = tiny_pipeline["dir"] / "gsva.parquet"
    scores.to_parquet(path)
    assert set(load_scores(path, 1).index) == set(expr.index) & set(folds.patient)
    held_out = load_scores(path)  # each patient's score from the fold that held it out
    assert held_out.index.is_unique and set(held_out.index) == set(folds.patient) & set(
        expr.index)
    assert held_out.loc[test[0]].equals(fold0.loc[test[0]])


GDC_HEADER = ("# gene-model: GENCODE v36\ngene_id|gene_name|gene_type|unstranded|stranded_first|"
              "stranded_second|tpm_unstranded|fpkm_unstranded|fpkm_uq_unstranded\n"
              "N_unmapped|||100|100|100|||\nN_multimapping|||5|5|5|||\n")


def test_per_sample_folders_gdc_star_htseq(tmp_path):
    gdc = tmp_path / "gdc"
    gdc.mkdir()
    for patient, (a, b) in {"S1": (10, 3), "S2": (20, 0)}.items():
        write_table(gdc / f"{patient}.rna_seq.augmented_star_gene_counts.tsv", GDC_HEADER +
                    f"ENSG00000141510.16|TP53|protein_coding|{a}|1|{a - 1}|1.5|0.5|0.7\n"
                    f"ENSG00000146648.18|EGFR|protein_coding|{b}|0|{b}|2.5|0.1|0.2\n")
    expr = _read(gdc)
    assert expr.kind == "counts" and expr.values.loc["S1", "TP53"] == 10
    assert list(expr.values.columns) == ["TP53", "EGFR"]
    assert _read(gdc, kind="tpm").values.loc["S2", "EGFR"] == 2.5
    assert read_expression(RnaSource(str(gdc), value_column="stranded_second"),
                           PATIENTS).values.loc["S2", "TP53"] == 19
    star = tmp_path / "star"
    star.mkdir()
    for patient in ("S1", "S3"):
        write_table(star / f"{patient}.ReadsPerGene.out.tab",
                    "N_unmapped|5|5|5\nN_noFeature|1|2|3\nTP53|7|0|7\nEGFR|4|4|0\n")
    assert _read(star).values.loc["S3", "EGFR"] == 4
    assert read_expression(RnaSource(str(star), value_column="4"),
                           PATIENTS).values.loc["S3", "EGFR"] == 0
    htseq = tmp_path / "htseq"
    htseq.mkdir()
    write_table(htseq / "S1.counts", "TP53|3\nEGFR|4\n__no_feature|9\n")
    write_table(htseq / "S2.counts", "TP53|3\nKRAS|4\n__no_feature|9\n")
    with pytest.raises(InputError, match="S2.counts: its gene IDs differ"):
        _read(htseq)
