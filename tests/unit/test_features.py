"""Feature extraction: registry, local weights only, provenance, atomic outputs."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from histodistill.errors import HistodistillError, SlideError, WeightsError
from histodistill.features.extract import SlideJob, extract_features, resolve_device
from histodistill.features.factory import build_extractor
from histodistill.features.registry import get_spec
from histodistill.provenance import file_sha256
from histodistill.wsi.segmentation import SegmentationParams, segment_slide
from histodistill.wsi.tiling import TilingParams, tile_slide


@pytest.fixture(scope="module")
def patches(tiny_cohort, tmp_path_factory):
    folder, _, plan = tiny_cohort
    out = tmp_path_factory.mktemp("patches")
    slide_id = next(iter(plan.slides))
    slide = folder / "slides" / f"{slide_id}.tiff"
    segment_slide(slide, slide_id, out / "t.geojson", out / "qc.png", SegmentationParams())
    tile_slide(slide, slide_id, out / "t.geojson", out / "p.h5", TilingParams(112.0, 112, 0.5))
    return slide_id, slide, out / "p.h5"


@pytest.mark.parametrize("name", ["resnet18_trunc", "resnet50_trunc", "timm:resnet10t"])
def test_cnn_extractors_build_with_seeded_random_weights(name):
    ext = build_extractor(name, None, seed=0)
    spec = ext.spec
    with torch.inference_mode():
        out = ext.encoder(torch.randint(0, 255, (2, 3, 64, 64), dtype=torch.uint8))
    assert out.shape == (2, spec.dim) and out.dtype == torch.float32
    assert ext.random_weights and "RANDOM" in ext.weights_source
    assert build_extractor(name, None, seed=0).weights_sha256 == ext.weights_sha256


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_weights_round_trip_through_the_real_loading_path(tmp_path, suffix):
    ref = build_extractor("resnet18_trunc", None, seed=5)
    path = tmp_path / f"w{suffix}"
    state = {k: v.contiguous() for k, v in ref.encoder.backbone.state_dict().items()}
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, path)
    loaded = build_extractor("resnet18_trunc", path, seed=99)
    assert not loaded.random_weights and loaded.weights_sha256 == file_sha256(path)
    x = torch.randint(0, 255, (3, 3, 64, 64), dtype=torch.uint8)
    with torch.inference_mode():
        assert torch.equal(ref.encoder(x), loaded.encoder(x))


def test_missing_and_mismatched_weights(tmp_path):
    with pytest.raises(WeightsError, match="not found.*obtain them"):
        build_extractor("resnet18_trunc", tmp_path / "none.safetensors")
    other = build_extractor("resnet50_trunc", None).encoder.backbone.state_dict()
    torch.save(other, tmp_path / "r50.pt")
    with pytest.raises(WeightsError, match="does not match extractor 'resnet18_trunc'|shape"):
        build_extractor("resnet18_trunc", tmp_path / "r50.pt")


def test_unknown_extractor_and_timm_names():
    with pytest.raises(HistodistillError, match="unknown extractor"):
        get_spec("uni_v9")
    spec = get_spec("timm:resnet10t")
    assert spec.pooling == "pooled" and spec.dim == 512


def test_gpu_request_without_gpu_is_an_error():
    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    with pytest.raises(HistodistillError, match="no CUDA GPU"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


def test_extracted_features_carry_provenance(patches, tmp_path):
    slide_id, slide, patch_h5 = patches
    out = tmp_path / "f.h5"
    n = extract_features([SlideJob(slide_id, str(slide), str(patch_h5), str(out))],
                         "resnet18_trunc", None, batch_size=8, code_version="abc")
    with h5py.File(out) as f, h5py.File(patch_h5) as p:
        assert f["features"].shape == (n[slide_id], 256) and f["features"].dtype == np.float32
        assert np.array_equal(f["coords"][:], p["coords"][:])
        assert f["coords"].attrs["patch_size_um"] == 112.0
        assert bool(f.attrs["random_weights"]) and f.attrs["code_version"] == "abc"
        assert len(f.attrs["weights_sha256"]) == 64
        assert np.isfinite(f["features"][:]).all()
        # written batch by batch (16 tiles), equal to the digest of the stored arrays
        stored = f["features"][:].tobytes() + f["coords"][:].astype(np.int64).tobytes()
        assert f.attrs["features_sha256"] == hashlib.sha256(stored).hexdigest()


def test_failure_mid_slide_leaves_no_file(patches, tmp_path, monkeypatch):
    slide_id, slide, patch_h5 = patches
    from histodistill.features import tiles

    calls = {"n": 0}
    original = tiles.read_tile

    def flaky(*args):
        calls["n"] += 1
        if calls["n"] > 12:
            raise RuntimeError("disk went away")
        return original(*args)

    monkeypatch.setattr(tiles, "read_tile", flaky)
    out = tmp_path / "f.h5"
    with pytest.raises(RuntimeError, match="disk went away"):
        extract_features([SlideJob(slide_id, str(slide), str(patch_h5), str(out))],
                         "resnet18_trunc", None, batch_size=8)
    assert calls["n"] == 13 and list(tmp_path.iterdir()) == []


def _shard(tiny_cohort, tiny_pipeline, out, n=3):
    """``n`` tiny-cohort slides (copied to ``out``) with their patches, as extraction jobs."""
    folder, _, plan = tiny_cohort
    done = Path(tiny_pipeline["features"][0]).parent.parent
    jobs = []
    for slide_id in list(plan.slides)[:n]:
        slide = out / f"{slide_id}.tiff"
        shutil.copy(folder / "slides" / f"{slide_id}.tiff", slide)
        jobs.append(SlideJob(slide_id, str(slide), str(done / f"{slide_id}.p.h5"),
                             str(out / "f" / f"{slide_id}.h5")))
    return jobs


def _features(path):
    with h5py.File(path) as f:
        return f["features"][:], f.attrs["status"]


def test_a_shard_through_worker_processes_equals_one_slide_at_a_time(tiny_cohort,
                                                                      tiny_pipeline, tmp_path):
    jobs = _shard(tiny_cohort, tiny_pipeline, tmp_path)
    counts = extract_features(jobs, "resnet18_trunc", None, batch_size=8, workers=2)
    assert list(counts) == [j.slide_id for j in jobs] and min(counts.values()) > 8
    for job in jobs:
        alone = tmp_path / "alone.h5"
        extract_features([SlideJob(job.slide_id, job.slide_path, job.patches_h5, str(alone))],
                         "resnet18_trunc", None, batch_size=8)
        shard_feats, status = _features(job.out_h5)
        assert status == "ok" and np.array_equal(shard_feats, _features(alone)[0])


@pytest.mark.parametrize("on_error", ["exclude", "stop"])
def test_an_unreadable_slide_in_a_shard_fails_alone(tiny_cohort, tiny_pipeline, tmp_path,
                                                    on_error):
    jobs = _shard(tiny_cohort, tiny_pipeline, tmp_path)
    bad = Path(jobs[1].slide_path)
    bad.write_bytes(bad.read_bytes()[:2048])  # truncated after tiling
    if on_error == "stop":
        with pytest.raises(SlideError, match=f"slide '{jobs[1].slide_id}'"):
            extract_features(jobs, "resnet18_trunc", None, batch_size=8, workers=2)
        # the slide before it is complete; nothing half-written under any final name
        assert _features(jobs[0].out_h5)[1] == "ok"
        written = sorted(p.name for p in (tmp_path / "f").iterdir() if p.is_file())
        assert written == [f"{jobs[0].slide_id}.h5"]
        return
    counts = extract_features(jobs, "resnet18_trunc", None, batch_size=8, workers=2,
                              on_error="exclude")
    assert counts[jobs[1].slide_id] == 0 and counts[jobs[0].slide_id] > 0
    assert counts[jobs[2].slide_id] > 0
    feats, status = _features(jobs[1].out_h5)
    assert status == "failed" and feats.shape == (0, 256)
    assert [_features(j.out_h5)[1] for j in (jobs[0], jobs[2])] == ["ok", "ok"]


def _rerun(jobs, caplog, **kwargs):
    """Delete every output (as Snakemake does before re-running a job), run the shard again;
    the slides restored from the reuse store."""
    for job in jobs:
        Path(job.out_h5).unlink()
    caplog.clear()
    with caplog.at_level("INFO", logger="histodistill.features.reuse"):
        extract_features(jobs, "resnet18_trunc", None, batch_size=8, **kwargs)
    return {r.args[0] for r in caplog.records if "restored from" in r.getMessage()}


def test_a_rerun_shard_restores_unchanged_slides_and_recomputes_changed_ones(
        tiny_cohort, tiny_pipeline, tmp_path, caplog, monkeypatch):
    import os

    from histodistill.features import extract

    jobs = _shard(tiny_cohort, tiny_pipeline, tmp_path)
    extract_features(jobs, "resnet18_trunc", None, batch_size=8)
    first = {j.slide_id: _features(j.out_h5)[0] for j in jobs}
    ids = set(first)

    # nothing changed: every slide is linked back, and the model is not even loaded
    with monkeypatch.context() as m:
        m.setattr(extract, "build_extractor", lambda *a, **k: pytest.fail("model loaded"))
        assert _rerun(jobs, caplog) == ids
    for job in jobs:
        assert np.array_equal(_features(job.out_h5)[0], first[job.slide_id])
        assert os.path.samefile(job.out_h5, Path(job.out_h5).parent / ".reuse" /
                                Path(job.out_h5).name)

    # a re-scanned slide (new mtime) is recomputed; the others are restored
    stat = os.stat(jobs[0].slide_path)
    os.utime(jobs[0].slide_path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert _rerun(jobs, caplog) == ids - {jobs[0].slide_id}
    assert np.array_equal(_features(jobs[0].out_h5)[0], first[jobs[0].slide_id])

    # a damaged stored file is not trusted: recomputed, and the result is right again
    with h5py.File(Path(jobs[1].out_h5).parent / ".reuse" / Path(jobs[1].out_h5).name,
                   "r+") as f:
        f["features"][0, 0] += 1.0
    assert _rerun(jobs, caplog) == ids - {jobs[1].slide_id}
    assert np.array_equal(_features(jobs[1].out_h5)[0], first[jobs[1].slide_id])

    # other code or other settings (here the seed): everything is recomputed
    assert _rerun(jobs, caplog, code_version="edited") == set()
    assert _rerun(jobs, caplog, code_version="edited", seed=1) == set()


def test_reader_processes_auto_are_the_jobs_threads_but_one_on_a_gpu_and_none_on_a_cpu():
    from histodistill.features.extract import reader_count

    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(4)  # what the rule's rule_context sets from Snakemake's threads
        assert reader_count("auto", torch.device("cuda")) == 3
        assert reader_count("auto", torch.device("cpu")) == 0
        torch.set_num_threads(1)
        assert reader_count("auto", torch.device("cuda")) == 0
    finally:
        torch.set_num_threads(threads)
    assert reader_count(5, torch.device("cpu")) == 5
    for bad in (-1, "many", True, 2.5):
        with pytest.raises(HistodistillError, match="num_workers must be a count"):
            reader_count(bad, torch.device("cpu"))
