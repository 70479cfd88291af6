"""The stored-JPEG tile reader gives OpenSlide's pixels, and falls back to OpenSlide where it
cannot be sure to."""

from __future__ import annotations

from dataclasses import replace

import h5py
import numpy as np
import openslide
import pytest
import tifffile

from conftest import TEST_DATA
from histodistill.features.extract import SlideJob, extract_features
from histodistill.features.jpeg_tiles import FAST, OPENSLIDE, decode_colorspaces, jpeg_level
from histodistill.features.tiles import SlideTiles, choose_reader, open_source, read_tile
from histodistill.units import Level0Px, Microns
from histodistill.wsi.tiling import TileGeometry
from histodistill.wsi.write import write_pyramidal_tiff

CMU = TEST_DATA / "wsi" / "CMU-1-Small-Region.svs"


def _geometry(size0: int, level: int, ds: float, patch_px: int) -> TileGeometry:
    return TileGeometry(Level0Px(size0), level, ds, round(size0 / ds), patch_px,
                        Microns(float(size0)), 1.0, float(size0) / patch_px)


def _grid(width: int, height: int, step: int, start: int = 0) -> np.ndarray:
    return np.array([[x, y] for y in range(start, height, step)
                     for x in range(start, width, step)], np.int64)


def _same_as_openslide(path, coords, geom) -> SlideTiles:
    tiles = SlideTiles("s", str(path), coords, geom)
    reader = choose_reader(tiles)
    assert reader == FAST
    fast = open_source(replace(tiles, reader=reader))
    with openslide.OpenSlide(str(path)) as slide:
        for i in range(len(coords)):
            ours, theirs = read_tile(fast, tiles, i), read_tile(slide, tiles, i)
            assert np.array_equal(ours, theirs), f"tile {i} at {coords[i]} differs"
    fast.close()
    return tiles


@pytest.mark.parametrize("size0, patch_px, start", [
    (448, 224, 0),  # 20x tiles from a 40x scan, resized; straddling the 240-px stored tiles
    (240, 240, 0),  # tiles at their stored resolution, on the stored grid
    (256, 256, 100),  # off the stored grid, crossing four stored tiles; and the slide edges
])
def test_real_aperio_slide_tiles_equal_openslide(size0, patch_px, start):
    """CMU-1 (Aperio SVS: RGB-coded JPEG without JFIF marker, shared JPEG tables)."""
    with openslide.OpenSlide(str(CMU)) as slide:
        width, height = slide.dimensions
    _same_as_openslide(CMU, _grid(width, height, size0, start),
                       _geometry(size0, 0, 1.0, patch_px))


@pytest.mark.parametrize("colour, tile", [("YCbCr", 256), ("RGB", 512), ("YCbCr", 128)])
def test_synthetic_pyramids_equal_openslide_at_every_level(tmp_path, colour, tile):
    """Generic tiled TIFF pyramids (levels as separate pages), YCbCr- or RGB-coded JPEG,
    levels of odd sizes whose last stored tiles are partial."""
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (1300, 1700, 3), dtype=np.uint8)
    path = tmp_path / "p.tiff"
    if colour == "YCbCr":
        write_pyramidal_tiff(path, image, 0.5, tile=tile)
    else:
        with tifffile.TiffWriter(path) as tw:
            for k, level in enumerate((image, image[::4, ::4].copy(), image[::16, ::16].copy())):
                tw.write(level, photometric="rgb", tile=(tile, tile), compression="jpeg",
                         compressionargs={"level": 85, "outcolorspace": "RGB"},
                         subfiletype=0 if k == 0 else 1, resolution=(2e4 / 4**k, 2e4 / 4**k),
                         resolutionunit="CENTIMETER", metadata=None)
    with openslide.OpenSlide(str(path)) as slide:
        downsamples = slide.level_downsamples
        width, height = slide.dimensions
    for level, ds in enumerate(downsamples[:2]):
        size0 = 448 if level == 0 else 896
        _same_as_openslide(path, _grid(width, height, size0),
                           _geometry(size0, level, ds, 224 if level == 0 else 112))


def test_slides_it_cannot_be_sure_of_are_read_through_openslide(tmp_path):
    with openslide.OpenSlide(str(CMU)) as slide:
        width, height = slide.dimensions
    geom = _geometry(448, 0, 1.0, 224)
    coords = _grid(width, height, 448)
    assert choose_reader(SlideTiles("s", str(CMU), coords, geom), "openslide") == OPENSLIDE
    with pytest.raises(Exception, match="tile_reader must be one of auto, openslide"):
        choose_reader(SlideTiles("s", str(CMU), coords, geom), "fast")
    # a level whose downsample is not whole, or coordinates off its pixel grid
    assert choose_reader(SlideTiles("s", str(CMU), coords, _geometry(448, 0, 4.0003, 224))
                         ) == OPENSLIDE
    pyramid = tmp_path / "p.tiff"
    write_pyramidal_tiff(pyramid, np.full((1024, 1024, 3), 200, np.uint8), 0.5)
    assert choose_reader(SlideTiles("s", str(pyramid), np.array([[2, 0]]),
                                    _geometry(448, 1, 4.0, 112))) == OPENSLIDE
    # not JPEG-compressed
    deflate = tmp_path / "d.tiff"
    tifffile.imwrite(deflate, np.full((512, 512, 3), 200, np.uint8), photometric="rgb",
                     tile=(256, 256), compression="zlib", resolution=(2e4, 2e4),
                     resolutionunit="CENTIMETER")
    assert jpeg_level(str(deflate), "generic-tiff", (512, 512)) is None
    assert choose_reader(SlideTiles("s", str(deflate), np.array([[0, 0]]), geom)) == OPENSLIDE
    # a vendor this reader was not checked against
    assert jpeg_level(str(CMU), "hamamatsu", (width, height)) is None


def test_decoder_colour_spaces_follow_the_tiff():
    assert decode_colorspaces(6, jfif=True) == (None, 2)  # YCbCr -> RGB
    assert decode_colorspaces(2, jfif=False) == (2, 2)  # Aperio: RGB-coded, no JFIF marker
    assert decode_colorspaces(2, jfif=True) == (None, 2)


def test_features_through_either_reader_agree(tiny_cohort, tmp_path):
    """The same slide extracted through both readers: equal features, and the feature file
    says which reader read it."""
    from histodistill.wsi.segmentation import SegmentationParams, segment_slide
    from histodistill.wsi.tiling import TilingParams, tile_slide

    folder, _, plan = tiny_cohort
    slide_id = next(iter(plan.slides))
    slide = folder / "slides" / f"{slide_id}.tiff"
    segment_slide(slide, slide_id, tmp_path / "t.geojson", tmp_path / "qc.png",
                  SegmentationParams())
    tile_slide(slide, slide_id, tmp_path / "t.geojson", tmp_path / "p.h5",
               TilingParams(112.0, 112, 0.5))
    feats = {}
    for reader in ("auto", "openslide"):
        out = tmp_path / f"{reader}.h5"
        extract_features([SlideJob(slide_id, str(slide), str(tmp_path / "p.h5"), str(out))],
                         "resnet18_trunc", None, batch_size=8, tile_reader=reader)
        with h5py.File(out) as f:
            feats[reader] = (f["features"][:], str(f.attrs["tile_reader"]))
    assert feats["auto"][1] == FAST and feats["openslide"][1] == OPENSLIDE
    np.testing.assert_allclose(feats["auto"][0], feats["openslide"][0], rtol=0, atol=1e-6)
