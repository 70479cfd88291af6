"""Opening slides: mpp from metadata or sheet, clear errors naming the slide."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from conftest import TEST_DATA
from histodistill.errors import SlideError
from histodistill.wsi.slide import open_slide, read_scaled, rgba_to_rgb
from histodistill.wsi.write import write_pyramidal_tiff

CMU = TEST_DATA / "wsi" / "CMU-1-Small-Region.svs"


def _tiff_without_mpp(path):
    img = np.full((512, 512, 3), 230, np.uint8)
    tifffile.imwrite(path, img, tile=(256, 256), photometric="rgb", compression="jpeg")
    return path


def test_real_aperio_slide_metadata():
    slide, info = open_slide(CMU, "cmu1")
    with slide:
        assert info.vendor == "aperio"
        assert info.mpp == pytest.approx(0.499)
        assert info.mpp_source == "metadata"
        assert info.dimensions == (2220, 2967)


def test_missing_mpp_names_the_slide_and_asks_for_the_sheet(tmp_path):
    path = _tiff_without_mpp(tmp_path / "nompp.tiff")
    with pytest.raises(SlideError, match="'nompp'.*no microns-per-pixel.*'mpp' column"):
        open_slide(path, "nompp")
    slide, info = open_slide(path, "nompp", mpp_override=0.5)
    slide.close()
    assert info.mpp == 0.5 and info.mpp_source == "sheet"


@pytest.mark.parametrize("mpp", [0.01, 50.0])
def test_implausible_mpp_is_an_error(tmp_path, mpp):
    path = _tiff_without_mpp(tmp_path / "x.tiff")
    with pytest.raises(SlideError, match="implausible resolution"):
        open_slide(path, "x", mpp_override=mpp)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(SlideError, match="'gone'.*does not exist"):
        open_slide(tmp_path / "gone.svs", "gone")
    bad = tmp_path / "bad.svs"
    bad.write_bytes(b"II*\x00" + bytes(range(256)) * 8)
    with pytest.raises(SlideError, match="'bad'"):
        open_slide(bad, "bad")


def test_best_level_never_upsamples(tmp_path):
    path = tmp_path / "p.tiff"
    write_pyramidal_tiff(path, np.full((1024, 2048, 3), 200, np.uint8), 0.25, min_level_px=16)
    slide, info = open_slide(path, "p")
    slide.close()
    assert info.level_downsamples[:3] == (1.0, 4.0, 16.0)
    assert info.best_level(1.0) == 0
    assert info.best_level(3.9) == 0
    assert info.best_level(4.0) == 1
    assert info.best_level(15.0) == 1
    assert info.best_level(100.0) == len(info.level_downsamples) - 1


def test_read_scaled_and_transparent_background():
    slide, info = open_slide(CMU, "cmu1")
    with slide:
        thumb = read_scaled(slide, info, 8.0)
    assert thumb.shape[:2] == (round(2967 * 0.499 / 8), round(2220 * 0.499 / 8))
    rgba = np.zeros((2, 2, 4), np.uint8)  # premultiplied, fully transparent
    assert (rgba_to_rgb(rgba) == 255).all()


def test_thumbnail_of_a_slide_without_pyramid_is_read_in_bands(tmp_path):
    """A single-level slide must not be read whole: banded reads give the same thumbnail."""
    import cv2

    rng = np.random.default_rng(0)
    img = cv2.resize(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8), (3000, 2000),
                     interpolation=cv2.INTER_LINEAR)
    path = tmp_path / "flat.tiff"
    tifffile.imwrite(path, img, photometric="rgb", tile=(256, 256), compression="jpeg",
                     resolution=(1e4 / 0.5, 1e4 / 0.5), resolutionunit="CENTIMETER",
                     metadata=None)
    slide, info = open_slide(path, "flat")
    with slide:
        assert len(info.level_dimensions) == 1
        whole = read_scaled(slide, info, 8.0)
        banded = read_scaled(slide, info, 8.0, max_read_px=3000 * 64)  # 4 output rows a band
    assert whole.shape == banded.shape == (125, 188, 3)
    assert np.abs(whole.astype(int) - banded.astype(int)).mean() < 2.0


def test_truncated_slide_is_a_clear_error(tmp_path):
    from histodistill.wsi.segmentation import SegmentationParams, segment_slide

    path = tmp_path / "cut.tiff"
    rng = np.random.default_rng(1)
    write_pyramidal_tiff(path, rng.integers(0, 255, (2048, 2048, 3), dtype=np.uint8), 0.5)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(SlideError, match="'cut'.*truncated: it is"):
        segment_slide(path, "cut", tmp_path / "c.geojson", tmp_path / "c.png",
                      SegmentationParams())


def _cut(src, dst, fraction):
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def _bytes(name, data):
    def make(folder):
        (folder / name).write_bytes(data)
        return folder / name
    return make


def _strip_tiff(folder):
    tifffile.imwrite(folder / "strips.tif", np.full((64, 64, 3), 200, np.uint8))
    return folder / "strips.tif"


@pytest.mark.parametrize("make, message", [
    (_bytes("empty.svs", b""), "empty \\(0 bytes\\).*copy it again"),
    (lambda d: _cut(CMU, d / "cut.svs", 0.5), "truncated: it is [\\d,]+ bytes, but its TIFF "
     "directory refers to data up to byte [\\d,]+.*compare its size"),
    (lambda d: _cut(CMU, d / "cut.svs", 0.02), "truncated"),
    (_bytes("x.dcm", b"\0" * 128 + b"DICM" + b"\x02\x00" * 64),
     "DICOM file that OpenSlide cannot place in a whole-slide series"),
    (_strip_tiff, "a complete TIFF, but not a whole-slide image.*tiled pyramidal"),
    (_bytes("photo.svs", b"\xff\xd8\xff\xe0" + b"\0" * 200), "a JPEG image, not a whole-slide"),
    (_bytes("slide.mrxs", b"[GENERAL]\n"), "MIRAX .mrxs needs its data folder slide/"),
    (_bytes("notes.svs", b"hello"), "not recognised by OpenSlide \\(the file starts b'hello'\\)"),
])
def test_unreadable_files_are_told_apart_with_advice(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(SlideError, match=message) as err:
        open_slide(path, "s")
    assert "'s'" in str(err.value)
