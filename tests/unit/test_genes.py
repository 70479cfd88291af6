"""Gene-level privileged vectors: VST fitted per fold, set|gene columns, G-HANet's groups are
the gene sets."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from histodistill.errors import InputError
from histodistill.evaluation.group_summary import ghanet_summary
from histodistill.rna.gene_columns import column_groups
from histodistill.rna.genes import gene_table, gene_values_by_fold, set_columns
from histodistill.rna.normalise import deseq2_vst
from histodistill.rna.pathways import load_scores
from histodistill.rna.table import RnaSource
from histodistill.training.fold import train_fold
from histodistill.training.loop import TrainParams
from histodistill.training.privileged import Privileged

SETS = {"Oncogenes": [f"G{i:03d}" for i in range(0, 20)] + ["NOT_MEASURED"],
        "Kinases": [f"G{i:03d}" for i in range(15, 40)]}  # G015-G019 in both


def _counts(n=24, n_genes=300, seed=0):
    rng = np.random.default_rng(seed)
    mu = rng.lognormal(4, 1.5, n_genes) * rng.lognormal(0, 0.3, (n, 1))
    counts = rng.negative_binomial(5, 5 / (5 + mu))
    return pd.DataFrame(counts, index=[f"p{i:02d}" for i in range(n)],
                        columns=[f"G{j:03d}" for j in range(n_genes)])


def _folds(patients, k=3):
    rows = []
    for fold in range(k):
        test = patients[fold::k]
        rest = [p for p in patients if p not in test]
        rows += [(fold, p, "test") for p in test]
        rows += [(fold, p, "val" if i < 3 else "train") for i, p in enumerate(rest)]
    return pd.DataFrame(rows, columns=["fold", "patient", "role"])


def test_columns_are_set_and_gene_and_groups_are_the_sets():
    pairs = set_columns(SETS, _counts().columns)
    cols = [f"{s}|{g}" for s, g in pairs]
    assert len(cols) == 20 + 25 and "Kinases|G015" in cols and "Oncogenes|G015" in cols
    assert column_groups(cols) == [list(range(20)), list(range(20, 45))]
    with pytest.raises(InputError, match="not a {set}|{gene} column"):
        column_groups(["HALLMARK_HYPOXIA"])


def test_counts_vst_is_fitted_on_the_training_part_only():
    counts = _counts()
    folds = _folds(list(counts.index))
    pairs = set_columns(SETS, counts.columns)
    table = gene_values_by_fold(counts, "counts", pairs, folds)
    genes = [g for _, g in pairs]
    for fold, rows in folds.groupby("fold"):
        ref = rows.loc[rows["role"] != "test", "patient"].tolist()
        alone, _ = deseq2_vst(counts.loc[ref])  # the training part on its own
        got = table.xs(fold, level="fold").droplevel("held_out")
        np.testing.assert_allclose(got.loc[ref].to_numpy(), alone.loc[ref, genes].to_numpy(),
                                   rtol=1e-10)
        held = table.xs(fold, level="fold").index.get_level_values("held_out")
        assert set(got.index[held]) == set(rows.loc[rows["role"] == "test", "patient"])
    # a held-out patient's counts change its own values and nobody else's
    victim = folds.query("fold == 0 and role == 'test'")["patient"].iloc[0]
    changed = counts.copy()
    changed.loc[victim] = changed.loc[victim].to_numpy()[::-1]
    again = gene_values_by_fold(changed, "counts", pairs, folds)
    fold0, fold0_again = (t.xs(0, level="fold").droplevel("held_out") for t in (table, again))
    others = [p for p in fold0.index if p != victim]
    np.testing.assert_array_equal(fold0.loc[others], fold0_again.loc[others])
    assert not np.allclose(fold0.loc[victim], fold0_again.loc[victim])


def test_sample_wise_kinds_are_the_same_in_every_fold():
    tpm = _counts().astype(float) / 10
    folds = _folds(list(tpm.index))
    pairs = set_columns(SETS, tpm.columns)
    table = gene_values_by_fold(tpm, "tpm", pairs, folds)
    expected = np.log2(tpm[[g for _, g in pairs]] + 1)
    for fold in range(3):
        got = table.xs(fold, level="fold").droplevel("held_out")
        np.testing.assert_allclose(got.to_numpy(), expected.loc[got.index].to_numpy())


@pytest.fixture(scope="module")
def genes_of_tiny(tiny_cohort, tiny_pipeline, tmp_path_factory):
    folder = tiny_cohort[0]
    out = tmp_path_factory.mktemp("genes")
    measured = pd.read_csv(folder / "rna_counts.tsv", sep="\t", index_col=0).index[:60]
    families = pd.DataFrame({"Tumour suppressors": measured[:30], "Cytokines": measured[30:]})
    families.to_csv(out / "families.csv", index=False)
    gene_table(RnaSource(str(folder / "rna_counts.tsv")), folder / "clinical.tsv",
               tiny_pipeline["folds"], out / "families.csv", out / "genes.parquet",
               out / "coverage.tsv", min_size=10)
    return out


def test_ghanet_on_gene_families(tiny_pipeline, genes_of_tiny, tmp_path):
    path = genes_of_tiny / "genes.parquet"
    fold0 = load_scores(path, 0)
    assert fold0.shape[1] == 60 and fold0.columns[0].startswith("Tumour suppressors|")
    coverage = pd.read_csv(genes_of_tiny / "coverage.tsv", sep="\t")
    assert coverage["used"].all()
    p = tiny_pipeline
    params = TrainParams(epochs=2, min_epochs=1, patience=1, batch_patients=2, max_patches=32,
                         n_bins=2, hidden=16)
    train_fold("ghanet", 0, p["folds"], p["clinical"], p["samples"], p["features"], path,
               tmp_path, params, privileged=Privileged("genes"))
    meta = json.loads((tmp_path / "meta.json").read_text())
    assert meta["structure"]["groups"] == [list(range(30)), list(range(30, 60))]
    assert meta["pathways"] == list(fold0.columns)
    table = ghanet_summary([tmp_path / "predictions.tsv"], p["clinical"], p["samples"],
                           p["features"], path, tmp_path / "groups.tsv", tmp_path / "g.png")
    assert table["members"].tolist() == ["Tumour suppressors (30 genes)", "Cytokines (30 genes)"]
    assert table["n_patients"].gt(0).all()
    with pytest.raises(InputError, match="one expert per pathway"):
        train_fold("mope_teacher", 0, p["folds"], p["clinical"], p["samples"], p["features"],
                   path, tmp_path / "m", params, privileged=Privileged("genes"))


def test_methods_text_names_the_gene_level_vector():
    from histodistill.report.html import _training_sentences

    cfg = {"train": {"n_bins": 4, "alpha": 0.0, "lr": 1e-3, "epochs": 5, "max_patches": 64,
                     "n_groups": 6},
           "splits": {"n_folds": 5, "seed": 0, "val_fraction": 0.2},
           "rna": {"geneset": "mcat_families"}, "models": ["ghanet"],
           "privileged": {"source": "genes"}}
    text = " ".join(_training_sentences(cfg))
    assert "genes of the 'mcat_families' gene sets" in text
    assert "one group per gene set" in text and "clustered" not in text
