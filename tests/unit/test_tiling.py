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
    assert n == (3072 // size0) * (2048 // size0) == len(coords)
    assert (coords % size0 == 0).all()
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
