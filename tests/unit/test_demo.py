"""The demo generator: real pyramidal TIFFs, real gene symbols, planted structure, determinism."""

from __future__ import annotations

import numpy as np
import openslide
import pandas as pd
import pytest
import tifffile

from conftest import HALLMARK
from histodistill.demo.cohort import latent_programmes, make_demo_slide, write_demo_tables
from histodistill.demo.spec import DemoSpec, plan_demo
from histodistill.errors import InputError
from histodistill.rna.gmt import read_gmt


def test_plan_is_deterministic_and_has_one_or_two_slides_per_patient():
    spec = DemoSpec(n_patients=40, seed=7, second_slide_fraction=0.3, rna_missing_fraction=0.1)
    a, b = plan_demo(spec), plan_demo(spec)
    assert a == b
    assert len(a.patients) == 40
    counts = pd.Series(list(a.slides.values())).value_counts()
    assert set(counts) <= {1, 2} and (counts == 2).sum() > 0
    assert len(a.rna_missing) == 4
    assert plan_demo(DemoSpec(n_patients=40, seed=8)).slides != a.slides


def test_spec_rejects_unknown_keys_and_bad_values():
    with pytest.raises(InputError, match="demo: unknown keys \\['n_patient'\\]"):
        DemoSpec.from_config({"n_patient": 10})
    with pytest.raises(ValueError, match="n_patients"):
        DemoSpec(n_patients=2)


def test_slides_are_pyramidal_jpeg_tiffs_that_openslide_opens(tiny_cohort):
    folder, spec, plan = tiny_cohort
    slide_id = next(iter(plan.slides))
    path = folder / "slides" / f"{slide_id}.tiff"
    with openslide.OpenSlide(path) as slide:
        assert slide.properties["openslide.vendor"] == "generic-tiff"
        assert float(slide.properties["openslide.mpp-x"]) == pytest.approx(spec.mpp)
        assert slide.level_count >= 3
        assert slide.dimensions == (round(spec.slide_width_um / spec.mpp),
                                    round(spec.slide_height_um / spec.mpp))
        assert slide.level_downsamples[1] == pytest.approx(4.0)
    with tifffile.TiffFile(path) as tif:
        assert all(p.is_tiled and p.compression == tifffile.COMPRESSION.JPEG for p in tif.pages)
        assert [p.subfiletype for p in tif.pages][1:] == [1] * (len(tif.pages) - 1)


def test_one_slide_written_alone_is_identical_to_the_cohorts(tiny_cohort, tmp_path):
    folder, spec, plan = tiny_cohort
    slide_id = list(plan.slides)[-1]
    make_demo_slide(tmp_path / "alone.tiff", spec, slide_id)
    assert (tmp_path / "alone.tiff").read_bytes() == \
        (folder / "slides" / f"{slide_id}.tiff").read_bytes()


def test_counts_are_integer_with_real_symbols_and_missing_rna(tiny_cohort):
    folder, spec, plan = tiny_cohort
    counts = pd.read_csv(folder / "rna_counts.tsv", sep="\t", index_col=0)
    universe = {g for genes in read_gmt(HALLMARK).values() for g in genes}
    assert len(counts) == spec.n_genes and set(counts.index) <= universe
    assert (counts.to_numpy() >= 0).all() and counts.dtypes.map(pd.api.types.is_integer_dtype).all()
    assert set(counts.columns) == set(plan.patients) - plan.rna_missing
    samples = pd.read_csv(folder / "samples.tsv", sep="\t")
    assert list(samples.columns) == ["patient", "slide", "path"]
    assert all((folder / p).is_file() for p in samples["path"])


def test_planted_programmes_drive_expression_and_hazard(tmp_path):
    spec = DemoSpec(n_patients=300, seed=11, n_genes=2000)
    plan = write_demo_tables(tmp_path, spec, HALLMARK)
    counts = pd.read_csv(tmp_path / "rna_counts.tsv", sep="\t", index_col=0)
    logcpm = np.log1p(counts / counts.sum() * 1e6)
    z = latent_programmes(spec, plan)
    sets = read_gmt(HALLMARK)
    for programme in spec.programmes:
        genes = [g for g in sets[programme.pathway] if g in logcpm.index]
        signal = logcpm.loc[genes].mean()
        assert np.corrcoef(signal, z.loc[signal.index, programme.name])[0, 1] > 0.8

    from histodistill.evaluation.metrics import harrell_cindex

    clinical = pd.read_csv(tmp_path / "clinical.tsv", sep="\t", index_col=0)
    truth = pd.read_csv(tmp_path / "ground_truth.tsv", sep="\t", index_col=0)
    assert 0.3 < clinical["event"].mean() < 0.9
    assert harrell_cindex(clinical["time"], clinical["event"], truth["linear_predictor"]) > 0.65


def test_visible_programmes_change_the_tissue():
    from histodistill.demo.tissue import paint_slide

    def dark_fraction(z: float) -> float:
        img, tissue = paint_slide(np.random.default_rng(0), (800, 1000), 0.5,
                                  {"nuclear_density": z})
        dark = img.mean(axis=2) < 120
        return float(dark[tissue].mean())

    assert dark_fraction(-1.5) < dark_fraction(0.0) < dark_fraction(1.5)
