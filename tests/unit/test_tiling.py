"""Tiling in physical units, CLAM/TRIDENT-style h5 attributes."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from histodistill.errors import SlideError
from histodistill.wsi.geojson import Polygon, write_geojson
from histodistill.wsi.tiling import TilingParams, grid_tissue_fraction, tile_coords, tile_slide
from histodistill.wsi.write import write_pyramidal_tiff


def _slide(tmp_path, mpp, size=(2048, 3072)):
    path = tmp_path / "s.tiff"
    write_pyramidal_tiff(path, np.full((*size, 3), 200, np.uint8), mpp)
    return path


def _square_geojson(path, x0, y0, x1, y1):
    ring = np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], float)
    write_geojson(path, [Polygon(ring)], "s", {})
    return path


def test_grid_fraction_blocks():
    mask = np.zeros((32, 48), np.uint8)
    mask[:16, :16] = 1
    mask[16:, 16:24] = 1
    frac = grid_tissue_fraction(mask, nx=3, ny=2)
    assert frac.tolist() == [[1.0, 0.0, 0.0], [0.0, 0.5, 0.0]]


def test_tile_coords_threshold():
    mask = np.zeros((32, 48), np.uint8)
    mask[:16, :16] = 1
    mask[16:, 16:24] = 1
    coords, frac = tile_coords(mask, (48 * 10, 32 * 10), 160, 0.5)
    assert coords.tolist() == [[0, 0], [160, 160]] and frac.tolist() == [1.0, 0.5]


@pytest.mark.parametrize("mpp, size0, level", [(0.25, 448, 1), (0.5, 224, 0)])
def test_physical_patch_size_and_level(tmp_path, mpp, size0, level):
    """112 um tiles fed as 112 px (1 um/px): 448 level-0 px at 0.25 um/px read from level 1
    (downsample 4, 1 um/px); 224 px at 0.5 um/px read from level 0 (level 1 is 2 um/px)."""
    slide = _slide(tmp_path, mpp)
    geo = _square_geojson(tmp_path / "t.geojson", 0, 0, 3072, 2048)
    n = tile_slide(slide, "s", geo, tmp_path / "p.h5", TilingParams(112.0, 112, 0.5))
    with h5py.File(tmp_path / "p.h5") as f:
        coords = f["coords"][:]
        a = dict(f["coords"].attrs)
    # whole tiles, plus the partial edge tiles that are at least half inside the slide
    nx, ny = (side // size0 + (side % size0 >= size0 / 2) for side in (3072, 2048))
    assert n == nx * ny == len(coords)
    assert (coords % size0 == 0).all()
    whole = tile_slide(slide, "s", geo, tmp_path / "w.h5",
                       TilingParams(112.0, 112, 0.5, pad_edges=False))
    assert whole == (3072 // size0) * (2048 // size0)
    assert a["patch_size_level0"] == size0 and a["patch_level"] == level
    assert a["patch_size"] == 112 and a["patch_size_um"] == 112.0
    assert a["patch_size_at_level"] == size0 // int(np.asarray(a["downsample"])[0])
    assert a["level0_mpp"] == mpp and a["target_mpp"] == 1.0 and a["name"] == "s"


def test_only_tissue_tiles_kept(tmp_path):
    slide = _slide(tmp_path, 0.5)
    geo = _square_geojson(tmp_path / "t.geojson", 0, 0, 448, 448)  # exactly 2 x 2 tiles
    assert tile_slide(slide, "s", geo, tmp_path / "p.h5", TilingParams(112.0, 112, 0.5)) == 4


def test_tile_grid_is_drawn_over_the_tissue_qc(tmp_path):
    import cv2

    slide = _slide(tmp_path, 0.5)  # 3072 x 2048 px
    geo = _square_geojson(tmp_path / "t.geojson", 0, 0, 448, 448)
    cv2.imwrite(str(tmp_path / "tissue.png"), np.full((256, 384, 3), 255, np.uint8))
    tile_slide(slide, "s", geo, tmp_path / "p.h5", TilingParams(112.0, 112, 0.5),
               tissue_qc_png=tmp_path / "tissue.png", out_qc_png=tmp_path / "tiles.png")
    qc = cv2.imread(str(tmp_path / "tiles.png"))
    drawn = np.argwhere((qc != 255).any(axis=2))
    assert drawn.size and drawn.min(axis=0).tolist() == [0, 0]
    assert drawn.max(axis=0).tolist() == [56, 56]  # 448 level-0 px at 1/8 scale


def test_no_tissue_tile_is_a_clear_error(tmp_path):
    slide = _slide(tmp_path, 0.5)
    geo = _square_geojson(tmp_path / "t.geojson", 0, 0, 50, 50)
    with pytest.raises(SlideError, match="'s'.*no tile of 112.0 um"):
        tile_slide(slide, "s", geo, tmp_path / "p.h5", TilingParams(112.0, 112, 0.5))
    assert not (tmp_path / "p.h5").exists()


def test_edge_tiles_are_read_padded_with_white(tmp_path):
    """A slide of 1.5 tiles: the right half-tile is kept and read with white beyond the edge."""
    import openslide

    from histodistill.features.tiles import SlideTiles, read_tile
    from histodistill.wsi.tiling import read_geometry

    path = tmp_path / "s.tiff"
    write_pyramidal_tiff(path, np.full((224, 336, 3), (180, 90, 150), np.uint8), 0.5)
    geo = _square_geojson(tmp_path / "t.geojson", 0, 0, 336, 224)
    assert tile_slide(path, "s", geo, tmp_path / "p.h5", TilingParams(112.0, 112, 0.5)) == 2
    with h5py.File(tmp_path / "p.h5") as f:
        coords, frac, geom = f["coords"][:], f["tissue_fraction"][:], read_geometry(f)
    assert coords.tolist() == [[0, 0], [224, 0]] and frac[1] == pytest.approx(0.5)
    with openslide.OpenSlide(str(path)) as slide:
        tile = read_tile(slide, SlideTiles("s", str(path), coords, geom), 1)  # (3, 112, 112)
    inside = np.abs(tile[:, :, :55].astype(int) - np.array([180, 90, 150])[:, None, None])
    assert inside.max() < 40  # the slide's colour, up to JPEG
    assert (tile[:, :, 57:] == 255).all()  # beyond the edge: white


def test_coarse_scans_warn_then_are_refused_unless_allowed(tmp_path, caplog):
    geo = _square_geojson(tmp_path / "t.geojson", 0, 0, 512, 512)
    slide = _slide(tmp_path, 1.5, size=(512, 512))  # 1 um/px tiles from a 1.5 um/px scan
    assert tile_slide(slide, "s", geo, tmp_path / "p.h5", TilingParams(112.0, 112, 0.5)) > 0
    assert "1.5x coarser than the tiles' 1 um/px" in caplog.text
    with h5py.File(tmp_path / "p.h5") as f:
        assert f.attrs["upsample_factor"] == pytest.approx(1.5)
    coarse = _slide(tmp_path, 4.0, size=(512, 512))
    with pytest.raises(SlideError, match="4x coarser.*upsampled 4x.*max_upsample: 4"):
        tile_slide(coarse, "s", geo, tmp_path / "c.h5", TilingParams(112.0, 112, 0.5))
    assert tile_slide(coarse, "s", geo, tmp_path / "c.h5",
                      TilingParams(112.0, 112, 0.5, max_upsample=4.0)) > 0
    with pytest.raises(ValueError, match="max_upsample must be >= 1"):
        TilingParams(max_upsample=0.5)
