"""A model bundle's manifest: its schema (manifest.schema.json) and its reading.

Light on purpose (no torch): the workflow reads the manifests of bundles given by path when it
parses the config, to refuse a bundle of another extractor or tiling before any job runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from histodistill.errors import InputError

FORMAT = "histodistill-bundle/1"
MANIFEST = "manifest.json"
WEIGHTS = "weights.safetensors"


def _schema() -> dict[str, Any]:
    return json.loads((Path(__file__).with_name("manifest.schema.json")).read_text("utf-8"))


def validate_manifest(manifest: dict[str, Any], where: str | Path) -> None:
    import jsonschema

    try:
        jsonschema.validate(manifest, _schema())
    except jsonschema.ValidationError as exc:
        path = "/".join(map(str, exc.absolute_path)) or "(top level)"
        raise InputError(f"{where}: not a histodistill model bundle manifest ({path}: "
                         f"{exc.message}); re-create it with the workflow's bundle_model "
                         "rule") from None


def read_manifest(bundle: str | Path) -> dict[str, Any]:
    """The manifest of a bundle folder (or of a manifest.json path), checked against the
    schema."""
    path = Path(bundle)
    path = path if path.name == MANIFEST else path / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"model bundle {path.parent}: cannot read {path.name} ({exc}); give "
                         "the folder results/{cohort}/final/{model} of a trained cohort") from None
    validate_manifest(manifest, path)
    return manifest
