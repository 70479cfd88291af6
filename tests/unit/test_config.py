"""The config schema, the package's defaults and the pinned environments agree."""

from __future__ import annotations

import dataclasses
import re
import tomllib

import pytest
import yaml

from conftest import REPO, rule_blocks
from histodistill.demo.spec import DemoSpec
from histodistill.training.loop import TrainParams
from histodistill.wsi.segmentation import SegmentationParams
from histodistill.wsi.tiling import TilingParams

SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())


def _props(*path: str) -> dict:
    node = SCHEMA
    for key in path:
        node = node["properties"][key] if key != "*" else node["additionalProperties"]
    return node["properties"]


@pytest.mark.parametrize("cls, path", [
    (SegmentationParams, ("wsi", "segmentation")),
    (TilingParams, ("wsi", "tiling")),
    (TrainParams, ("train",)),
    (DemoSpec, ("cohorts", "*", "demo")),
])
def test_schema_defaults_equal_package_defaults(cls, path):
    props = _props(*path)
    for field in dataclasses.fields(cls):
        if field.name == "programmes":
            continue
        assert field.name in props, f"{field.name} is not in the schema"
        assert props[field.name]["default"] == field.default, field.name


def test_every_schema_key_is_documented():
    def walk(node, where):
        for key, sub in node.get("properties", {}).items():
            assert "description" in sub, f"{where}.{key} has no description"
            if key != "cohorts":
                assert "default" in sub or sub.get("type") == "object" or key in {
                    "samples", "clinical", "path"}, f"{where}.{key} has no default"
            walk(sub, f"{where}.{key}")
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{where}.*")

    walk(SCHEMA, "config")


def _pins(lines):
    out = {}
    for line in lines:
        m = re.match(r"^\s*-?\s*\"?([A-Za-z0-9_.-]+)==([^\",\s]+)", line)
        if m:
            out[m.group(1).lower()] = m.group(2)
    return out


def test_envs_pin_exactly_what_pyproject_pins():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pinned = _pins(project["dependencies"])
    assert len(pinned) == len(project["dependencies"]), "every dependency must be pinned =="
    for env in sorted((REPO / "envs").glob("*.yaml")):
        doc = yaml.safe_load(env.read_text())
        pip = next(d["pip"] for d in doc["dependencies"] if isinstance(d, dict))
        env_pins = _pins(pip)
        assert len(env_pins) == len(pip), f"{env.name}: every package must be pinned =="
        for name, version in env_pins.items():
            assert pinned.get(name) == version, f"{env.name}: {name}=={version} vs pyproject"


def test_every_rule_uses_an_existing_env():
    rules = (REPO / "workflow" / "rules").glob("*.smk")
    envs = {m for f in rules for m in re.findall(r'"\.\./\.\./(envs/[a-z]+\.yaml)"',
                                                 f.read_text())}
    assert envs and all((REPO / e).is_file() for e in envs)


def test_config_readme_documents_every_key():
    text = (REPO / "config" / "README.md").read_text()

    def walk(node, prefix):
        for key, sub in node.get("properties", {}).items():
            path = f"{prefix}.{key}" if prefix else key
            if "properties" not in sub:  # a setting, not a group of settings
                assert f"`{path}`" in text, f"config/README.md does not document {path}"
            walk(sub, path)
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            walk(extra, f"{prefix}.<name>")

    walk(SCHEMA, "")


def test_every_rule_declares_its_cluster_resources():
    """SLURM needs threads, mem_mb and runtime of every rule (gpu for the GPU-capable ones);
    ``all`` is the only local rule."""
    rules = rule_blocks()
    assert len(rules) > 10
    common = (REPO / "workflow" / "rules" / "common.smk").read_text()
    shard = re.search(r"def shard_resources\(.*?\n\n\n", common, re.DOTALL).group(0)
    for name, body in rules.items():
        if "**shard_resources(" in body:  # the feature shards' resources come from there
            body += shard
        for key in ("threads:", "mem_mb=", "runtime="):
            assert key in body, f"rule {name} declares no {key}"
        if name in ("extract_features", "train"):
            assert "gpu=" in body, f"rule {name} declares no gpu"
