"""RNA: count tables are validated, DESeq2 matches R, pathway scores are sample-wise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import HALLMARK, TEST_DATA, shared_file, write_table
from histodistill.errors import InputError
from histodistill.rna.counts import match_samples, read_counts
from histodistill.rna.gmt import read_gmt
from histodistill.rna.normalise import deseq2_vst, normalise_counts
from histodistill.rna.pathways import pathway_scores, score_pathways

DESEQ2 = TEST_DATA / "deseq2"




def test_counts_orientation_duplicates_and_htseq_rows(tmp_path):
    path = write_table(tmp_path / "c.tsv",
                       "gene|S1|S2\nG1|1|2\nG2|3|4\nG1|10|20\n__no_feature|5|5\n")
    counts = read_counts(path)
    assert list(counts.index) == ["S1", "S2"] and list(counts.columns) == ["G1", "G2"]
    assert counts.loc["S1", "G1"] == 11  # duplicated gene rows are summed


@pytest.mark.parametrize("body, message", [
    ("gene|S1|S2\nG1|1.5|2\n", "non-integer.*gene 'G1', sample 'S1'.*TPM/FPKM"),
    ("gene|S1|S2\nG1|-1|2\n", "negative.*gene 'G1', sample 'S1'"),
    ("gene|S1|S2\nG1||2\n", "missing \\(NaN\\).*sample 'S1'"),
    ("gene|S1|S2\nG1|a|2\n", "column 'S1' is not numeric \\(row 'G1'"),
    ("gene|S1|S1\nG1|1|2\n", "more than once"),
    ("gene|S1|S2\nG1|0|2\nG2|0|1\n", "no counts at all: S1"),
])
def test_count_errors_name_row_and_column(tmp_path, body, message):
    with pytest.raises(InputError, match=message):
        read_counts(write_table(tmp_path / "c.tsv", body))


def test_sample_mismatch_lists_ids_on_both_sides():
    counts = pd.DataFrame({"G1": [1, 2]}, index=["P1", "X9"])
    with pytest.raises(InputError, match="match no patient.*X9.*without RNA: P2"):
        match_samples(counts, ["P1", "P2"], "counts.tsv")
    assert list(match_samples(counts.loc[["P1"]], ["P1", "P2"], "c").index) == ["P1"]


def test_deseq2_matches_r_reference():
    """R DESeq2 1.34.0: estimateSizeFactors and blind parametric VST on PyDESeq2's data."""
    counts = read_counts(DESEQ2 / "synthetic_counts.csv")
    vst, sf = deseq2_vst(counts)
    r_sf = pd.read_csv(DESEQ2 / "r_size_factors.csv", index_col=0)["x"]
    r_vst = pd.read_csv(DESEQ2 / "r_vst_blind_parametric.csv", index_col=0).T
    np.testing.assert_allclose(sf.to_numpy(), r_sf.loc[sf.index].to_numpy(), rtol=1e-10)
    np.testing.assert_allclose(vst.to_numpy(), r_vst.loc[vst.index, vst.columns].to_numpy(),
                               atol=2e-4)


@pytest.mark.realdata
def test_real_airway_counts_normalise():
    path = shared_file("real_counts", "airway_gene_counts.tsv.gz")
    raw = pd.read_csv(path, sep="\t", index_col=0)
    counts = raw.loc[raw.sum(axis=1) >= 10].T.astype(np.int64)
    vst, sf = deseq2_vst(counts.iloc[:, :4000])
    assert vst.shape == (8, 4000) and np.isfinite(vst.to_numpy()).all()
    libsize = counts.sum(axis=1)
    assert np.corrcoef(sf, libsize)[0, 1] > 0.8  # size factors track sequencing depth


def test_ssgsea_scores_are_sample_wise(tiny_cohort):
    """A patient's score does not depend on the other patients (no cohort-level fit)."""
    folder, _, _ = tiny_cohort
    counts = read_counts(folder / "rna_counts.tsv")
    vst, _ = deseq2_vst(counts)
    sets = {k: v for k, v in read_gmt(HALLMARK).items() if k.endswith("E2F_TARGETS")
            or k.endswith("HYPOXIA")}
    full = pathway_scores(vst, sets, "ssgsea")
    vst_sub, _ = deseq2_vst(counts.iloc[:4])  # different size factors and dispersion trend
    sub = pathway_scores(vst_sub, sets, "ssgsea")
    np.testing.assert_allclose(sub.to_numpy(), full.loc[sub.index].to_numpy(), rtol=1e-9)


def test_normalise_and_score_recover_planted_programmes(tiny_cohort, tmp_path):
    folder, spec, plan = tiny_cohort
    normalise_counts(folder / "rna_counts.tsv", folder / "clinical.tsv", tmp_path / "n.parquet",
                     tmp_path / "sf.tsv", tmp_path / "qc.png", min_total_count=10)
    score_pathways(tmp_path / "n.parquet", HALLMARK, tmp_path / "p.parquet",
                   tmp_path / "cov.tsv")
    scores = pd.read_parquet(tmp_path / "p.parquet")
    assert set(scores.index) == set(plan.patients) - plan.rna_missing
    truth = pd.read_csv(folder / "ground_truth.tsv", sep="\t", index_col=0)
    for prog in spec.programmes:
        r = np.corrcoef(scores[prog.pathway], truth.loc[scores.index, f"z_{prog.name}"])[0, 1]
        assert r > 0.8, prog
    coverage = pd.read_csv(tmp_path / "cov.tsv", sep="\t")
    assert {"gene_set", "n_genes", "n_found", "fraction_found", "used"} <= set(coverage.columns)
    assert (tmp_path / "qc.png").stat().st_size > 1000


def test_gmt_errors(tmp_path):
    with pytest.raises(InputError, match="appears twice"):
        read_gmt(write_table(tmp_path / "a.gmt", "S1|d|A|B\nS1|d|C\n"))
    with pytest.raises(InputError, match="line 1"):
        read_gmt(write_table(tmp_path / "b.gmt", "S1|only\n"))
    sets = read_gmt(HALLMARK)
    assert len(sets) == 50 and "HALLMARK_HYPOXIA" in sets
