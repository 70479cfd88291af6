"""Each rule's conda env provides every third-party package its code imports.

The imports are read from the rule's script and every package module it reaches (the same
walk as the code hash, ``provenance.package_imports``), mapped to the distributions installed
here, and looked up among the env's pins. Pins themselves match pyproject.toml
(``test_config.py``)."""

from __future__ import annotations

import importlib.metadata
import re
import sys
from pathlib import Path

import yaml

from conftest import REPO, rule_blocks, rule_script
from histodistill.provenance import PACKAGE, imported_names, package_imports

LOCAL = {PACKAGE, "_bootstrap", "snakemake"}  # snakemake: only the object scripts receive


def _third_party(files: list[Path]) -> set[str]:
    tops = {name.split(".")[0] for f in files for name in imported_names(f)}
    return {t for t in tops if t not in sys.stdlib_module_names and t not in LOCAL}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _env_packages(env: Path) -> set[str]:
    deps = yaml.safe_load(env.read_text())["dependencies"]
    pip = next(d["pip"] for d in deps if isinstance(d, dict))
    names = [str(d).split("=")[0] for d in deps if not isinstance(d, dict)]
    return {_norm(re.split(r"[=<>]", p)[0]) for p in pip} | {_norm(n) for n in names}


def _rules() -> list[tuple[str, str, str]]:
    """(rule, script name, env path) of every rule with a script."""
    out = []
    for name, block in rule_blocks().items():
        script = rule_script(block)
        if script:
            env = re.search(r'conda:\n\s+"\.\./\.\./(envs/\w+\.yaml)"', block)
            assert env, f"rule {name} has no conda env"
            out.append((name, script, env.group(1)))
    return out


def test_every_rule_env_provides_what_its_code_imports():
    dists = importlib.metadata.packages_distributions()
    missing = []
    for rule, script, env in _rules():
        path = REPO / "workflow" / "scripts" / f"{script}.py"
        provided = _env_packages(REPO / env)
        for module in sorted(_third_party([path, *package_imports(path)])):
            names = {_norm(d) for d in dists.get(module, [module])}
            if not names & provided:
                missing.append(f"{rule} imports {module} ({'/'.join(sorted(names))}), "
                               f"not in {env}")
    assert not missing, "\n".join(missing)
