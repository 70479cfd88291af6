"""Tissue polygons (with holes) in level-0 pixels, as QuPath-readable GeoJSON."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from histodistill.errors import InputError
from histodistill.io import write_json


@dataclass
class Polygon:
    exterior: np.ndarray  # (N, 2) float, level-0 (x, y)
    holes: list[np.ndarray] = field(default_factory=list)

    def area(self) -> float:
        return float(_ring_area(self.exterior) - sum(_ring_area(h) for h in self.holes))


def _ring_area(ring: np.ndarray) -> float:
    x, y = ring[:, 0], ring[:, 1]
    return abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))) / 2.0


def _closed(ring: np.ndarray) -> list[list[float]]:
    pts = [[round(float(x), 2), round(float(y), 2)] for x, y in ring]
    return pts + [pts[0]]


def write_geojson(path: str | Path, polygons: list[Polygon], slide_id: str,
                  properties: dict[str, object]) -> None:
    """One Feature per tissue component; QuPath imports them as "Tissue" annotations."""
    features = [{
        "type": "Feature",
        "id": f"{slide_id}-tissue-{i}",
        "geometry": {"type": "Polygon",
                     "coordinates": [_closed(p.exterior)] + [_closed(h) for h in p.holes]},
        "properties": {"objectType": "annotation",
                       "classification": {"name": "Tissue", "color": [80, 200, 120]},
                       "area_level0_px": round(p.area(), 1)},
    } for i, p in enumerate(polygons)]
    write_json(path, {"type": "FeatureCollection", "features": features,
                      "properties": {"slide": slide_id, **properties}})


def read_geojson(path: str | Path) -> tuple[list[Polygon], dict[str, object]]:
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        polygons = []
        for feat in doc["features"]:
            geom = feat["geometry"]
            parts = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
            for rings in parts:
                arrays = [np.asarray(r, dtype=np.float64)[:-1] for r in rings]
                polygons.append(Polygon(arrays[0], arrays[1:]))
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise InputError(f"{path}: not a tissue GeoJSON written by segment_and_tile ({exc}); "
                         "delete it so that segment_and_tile runs again") from None
    return polygons, dict(doc.get("properties", {}))


def rasterize(polygons: list[Polygon], shape: tuple[int, int], scale: float) -> np.ndarray:
    """uint8 mask of ``shape`` (H, W) where one mask pixel spans ``scale`` level-0 pixels.

    Polygons are drawn largest first, each exterior then its holes, so an island of tissue
    inside another component's hole survives.
    """
    mask = np.zeros(shape, np.uint8)
    shift = 4  # sub-pixel precision of cv2.fillPoly

    def pts(ring: np.ndarray) -> np.ndarray:
        return np.round(ring / scale * (1 << shift)).astype(np.int32).reshape(-1, 1, 2)

    for poly in sorted(polygons, key=Polygon.area, reverse=True):
        cv2.fillPoly(mask, [pts(poly.exterior)], 1, lineType=cv2.LINE_8, shift=shift)
        if poly.holes:
            cv2.fillPoly(mask, [pts(h) for h in poly.holes], 0, lineType=cv2.LINE_8, shift=shift)
    return mask
