"""Feature shards: consecutive sheet rows, stable as a cohort grows, unique rule names."""

from __future__ import annotations

import pytest

from histodistill.errors import InputError
from histodistill.features.shards import plan_shards, shard_rule_names


def test_shards_are_consecutive_rows_and_appending_changes_only_the_last():
    slides = [f"s{i}" for i in range(12)]
    shards = plan_shards(slides, 5)
    assert shards == [slides[:5], slides[5:10], slides[10:]]
    grown = plan_shards([*slides, "new1", "new2", "new3", "new4"], 5)
    assert grown[:2] == shards[:2]  # earlier shards keep their slides (their jobs do not re-run)
    assert grown[2:] == [["s10", "s11", "new1", "new2", "new3"], ["new4"]]
    assert plan_shards(slides, 100) == [slides] and plan_shards([], 5) == []
    with pytest.raises(InputError, match="slides_per_job"):
        plan_shards(slides, 0)


def test_rule_names_are_identifiers_and_clashes_are_errors():
    names = shard_rule_names([("TCGA-BRCA", 0), ("TCGA-BRCA", 1), ("luad", 0)])
    assert names == {("TCGA-BRCA", 0): "extract_features_TCGA_BRCA_0",
                     ("TCGA-BRCA", 1): "extract_features_TCGA_BRCA_1",
                     ("luad", 0): "extract_features_luad_0"}
    assert all(n.isidentifier() for n in names.values())
    with pytest.raises(InputError, match="'TCGA-BRCA' and 'TCGA_BRCA'"):
        shard_rule_names([("TCGA-BRCA", 0), ("TCGA_BRCA", 0)])
