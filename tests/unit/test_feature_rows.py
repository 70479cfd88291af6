"""Reading chosen rows of feature files (features/rows.py) and the training bags built on it."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from histodistill.errors import InputError
from histodistill.features.rows import feature_chunks, read_rows, row_layout
from histodistill.training.data import FeatureBank, sample_bag

N, DIM = 2500, 48  # 1,024-row chunks: the last one is partly filled


def write(path: Path, x: np.ndarray, **kwargs: object) -> Path:
    with h5py.File(path, "w") as f:
        f.create_dataset("features", data=x, **kwargs)
        f.attrs.update(extractor="synthetic", weights_sha256="w")
    return path


@pytest.fixture
def matrix() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(N, DIM)).astype(np.float32)


def indices(rng: np.random.Generator) -> list[np.ndarray]:
    """Random subsets, runs across chunk boundaries, the ends, everything, nothing."""
    return [np.sort(rng.choice(N, k, replace=False)) for k in (1, 7, 512, N - 3)] + [
        np.arange(1000, 1100), np.array([0, 1, 2, 1023, 1024, 2047, 2048, N - 1]),
        np.arange(N), np.array([], dtype=np.int64)]


@pytest.mark.parametrize("layout", ["extraction", "contiguous", "uneven_chunks"])
def test_rows_read_alone_equal_the_same_rows_of_the_whole_matrix(tmp_path, matrix, layout):
    chunks = {"extraction": feature_chunks(N, DIM), "contiguous": None,
              "uneven_chunks": (333, DIM)}[layout]
    path = write(tmp_path / "f.h5", matrix, chunks=chunks)
    with h5py.File(path) as f:
        found = row_layout(f["features"])
    assert found is not None and found.shape == (N, DIM)
    assert len(found.offsets) == {"extraction": 3, "contiguous": 1, "uneven_chunks": 8}[layout]
    for idx in indices(np.random.default_rng(1)):
        rows = read_rows(path, found, idx)
        assert rows.dtype == np.float32
        np.testing.assert_array_equal(rows, matrix[idx])


def test_extracted_feature_files_have_a_row_layout(tiny_pipeline):
    for path in tiny_pipeline["features"]:
        with h5py.File(path) as f:
            ds = f["features"]
            whole = ds[:]
            found = row_layout(ds)
        assert found is not None, path
        idx = np.arange(0, len(whole), 3)
        np.testing.assert_array_equal(read_rows(path, found, idx), whole[idx])


@pytest.mark.parametrize("kind", ["gzip", "narrow_chunks", "unwritten_chunks", "big_endian",
                                  "empty"])
def test_matrices_whose_rows_cannot_be_read_alone_have_no_layout(tmp_path, matrix, kind):
    path = tmp_path / "f.h5"
    if kind == "gzip":
        write(path, matrix, chunks=feature_chunks(N, DIM), compression="gzip")
    elif kind == "narrow_chunks":
        write(path, matrix, chunks=(1024, 16))
    elif kind == "big_endian":
        write(path, matrix.astype(">f4"))
    elif kind == "empty":
        write(path, matrix[:0])  # as a failed slide's file (write_failed_h5)
    else:
        with h5py.File(path, "w") as f:
            ds = f.create_dataset("features", shape=(N, DIM), dtype="float32",
                                  chunks=feature_chunks(N, DIM))
            ds[:1024] = matrix[:1024]
    with h5py.File(path) as f:
        assert row_layout(f["features"]) is None


def test_a_truncated_file_and_bad_indices_are_errors(tmp_path, matrix):
    path = write(tmp_path / "f.h5", matrix, chunks=feature_chunks(N, DIM))
    with h5py.File(path) as f:
        found = row_layout(f["features"])
    assert found is not None
    with pytest.raises(ValueError, match="increasing"):
        read_rows(path, found, np.array([5, 5]))
    with pytest.raises(ValueError, match="within"):
        read_rows(path, found, np.array([N]))
    with open(path, "r+b") as fh:
        fh.truncate(found.offsets[-1] + 10)
    with pytest.raises(InputError, match=r"f\.h5: the file ends inside its feature matrix"):
        read_rows(path, found, np.array([N - 1]))


@pytest.fixture
def slides(tmp_path) -> dict[str, Path]:
    """Four slides of different sizes in extraction's layout, one gzip-compressed."""
    rng = np.random.default_rng(2)
    paths = {}
    for name, n, gzip in (("a", 2500, False), ("b", 700, False), ("c", 1300, True),
                          ("d", 40, False)):
        x = rng.normal(size=(n, DIM)).astype(np.float32)
        paths[name] = write(tmp_path / f"{name}.h5", x, chunks=feature_chunks(n, DIM),
                            compression="gzip" if gzip else None)
    return paths


@pytest.mark.parametrize("cache_mb", [0.0, 0.4, 2048.0])
def test_a_sampled_bag_is_the_same_whatever_is_cached_or_read_alone(slides, cache_mb):
    bags = [["a"], ["b", "a"], ["c", "d", "b"], ["d"], ["a", "c"]]
    bank = FeatureBank(slides, cache_mb=cache_mb)
    reference = FeatureBank(slides, cache_mb=0.0)
    rng, rng_ref = np.random.default_rng(3), np.random.default_rng(3)
    for _ in range(3):
        for bag in bags:
            for cap in (None, 30, 512, 5000):
                got = bank.sample(bag, cap, rng)
                whole = reference.bag(bag)
                np.testing.assert_array_equal(got, whole[sample_bag(len(whole), cap, rng_ref)])
    assert rng.random() == rng_ref.random()  # the same draws: same seed, same numbers
    assert bank.cached_bytes == sum(b.nbytes for b in bank._bags.values()) <= cache_mb * 2**20
    if cache_mb == 0.4:  # room for b, c and d, not a (whose rows are read alone)
        assert set(bank._bags) == {"b", "c", "d"}


def test_cached_bags_are_shared_read_only_and_sizes_come_from_metadata(slides):
    bank = FeatureBank(slides)
    assert bank.n_patches(["a", "b"]) == 3200 and not bank._bags
    one = bank.bag(["a"])
    assert bank.bag(["a"]) is one and not one.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        one[0, 0] = 1.0


def test_the_feature_scaler_is_fitted_in_two_passes_to_the_numbers_of_one(slides):
    """fit_feature_scaler never stacks the sample, yet gives Standardiser.fit's exact numbers
    on the stacked sample (numpy's row-by-row order) and leaves the generator as one pass."""
    from histodistill.training.data import PatientRecord, Standardiser, fit_feature_scaler

    bags = [["a"], ["b", "a"], ["c", "d", "b"], ["d"], ["a", "c"]]
    records = [PatientRecord(f"p{i}", 1.0, 1, 0, bag, None) for i, bag in enumerate(bags)]
    for cache_mb in (0.0, 2048.0):
        rng, rng_ref = np.random.default_rng(4), np.random.default_rng(4)
        got = fit_feature_scaler(FeatureBank(slides, cache_mb), records, 300, rng)
        reference = FeatureBank(slides, 0.0)
        stack = np.concatenate([reference.sample(r.slides, 300, rng_ref) for r in records])
        want = Standardiser.fit(stack.astype(np.float64))
        np.testing.assert_array_equal(got.mean, want.mean)
        np.testing.assert_array_equal(got.std, want.std)
        assert rng.random() == rng_ref.random()
    with pytest.raises(InputError, match="1 patch"):
        fit_feature_scaler(FeatureBank(slides), records[:1], 1, np.random.default_rng(0))
