"""The cohort's feature index: what cohort-level steps read instead of every slide's h5."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest

from histodistill.errors import InputError
from histodistill.features.index import feature_paths, index_features
from histodistill.provenance import file_sha256


def _h5(path, n, dim=8, extractor="resnet18_trunc", status=None):
    with h5py.File(path, "w") as f:
        f.create_dataset("features", data=np.zeros((n, dim), np.float32))
        f.attrs["extractor"] = extractor
        if status:
            f.attrs["status"], f.attrs["reason"] = status, "no tissue"
    return str(path)


def test_index_lists_every_slide_with_status_and_checksum(tmp_path):
    files = [_h5(tmp_path / "s2.h5", 5), _h5(tmp_path / "s1.h5", 3),
             _h5(tmp_path / "bad.h5", 0, status="failed")]
    index = index_features(files, tmp_path / "index.tsv")
    back = pd.read_csv(tmp_path / "index.tsv", sep="\t", keep_default_na=False)
    assert list(back["slide"]) == ["bad", "s1", "s2"] == list(index["slide"])
    assert list(back["n_patches"]) == [0, 3, 5] and list(back["status"]) == ["failed", "ok", "ok"]
    assert back.loc[back["slide"] == "bad", "reason"].item() == "no tissue"
    assert back.loc[1, "sha256"] == file_sha256(tmp_path / "s1.h5")
    assert feature_paths(tmp_path / "index.tsv") == sorted(files)


def test_mixed_extractors_and_missing_files_are_errors(tmp_path):
    files = [_h5(tmp_path / "a.h5", 2), _h5(tmp_path / "b.h5", 2, dim=16, extractor="uni")]
    with pytest.raises(InputError, match="different extractors"):
        index_features(files, tmp_path / "index.tsv")
    assert not (tmp_path / "index.tsv").exists()
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(InputError, match="junk.h5.*re-run"):
        index_features([str(tmp_path / "junk.h5")], tmp_path / "index.tsv")
    index_features(files[:1], tmp_path / "index.tsv")
    (tmp_path / "a.h5").unlink()
    with pytest.raises(InputError, match="1 listed files are missing"):
        feature_paths(tmp_path / "index.tsv")


def test_the_index_takes_the_digest_extraction_wrote_and_does_not_reread_the_file(tmp_path):
    path = _h5(tmp_path / "s1.h5", 4)
    with h5py.File(path, "a") as f:
        f.attrs["features_sha256"] = "ab" * 32
    index = index_features([path], tmp_path / "index.tsv")
    assert index["sha256"].tolist() == ["ab" * 32] != [file_sha256(path)]
