"""Hashes and versions that identify how an output was made.

``script_code_hash`` is passed as a rule param (``code``) so that editing the code one step
runs re-runs exactly that step's outputs. Snakemake's own code trigger sees only the thin
script, not the package it calls, so the hash follows the script's imports through the
package: nobody keeps a list of modules per step by hand.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import os
from functools import cache
from pathlib import Path

PACKAGE = "histodistill"
_PACKAGE_ROOT = Path(__file__).resolve().parent

# Modules whose edits cannot change any output: exception classes and their messages, this
# hashing itself, unit type aliases, the package docstring and version (paths relative to the
# package root).
NOT_HASHED = frozenset({"errors.py", "provenance.py", "units.py", "__init__.py"})


def _module_files(name: str, root: Path) -> list[Path]:
    """The files that importing the dotted module ``name`` of the package runs: its own file
    and the ``__init__.py`` of every package on the way (an imported name that is not a
    module, as in ``from pkg.mod import func``, resolves to ``pkg/mod.py``)."""
    parts = name.split(".")[1:]
    files = []
    for i in range(len(parts) + 1):
        base = root.joinpath(*parts[:i])
        if (base / "__init__.py").is_file():
            files.append(base / "__init__.py")
        elif i and base.with_suffix(".py").is_file():
            files.append(base.with_suffix(".py"))
            break
    return files


def _names(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def imported_names(source: str | os.PathLike[str]) -> set[str]:
    """Every absolute dotted name ``source`` imports (function-level imports included; for
    ``from m import x`` the name is ``m.x``)."""
    return _names(ast.parse(Path(source).read_bytes(), filename=str(source)))


@cache
def _parse(path: Path, root: Path) -> tuple[frozenset[Path], bytes]:
    """Package module files ``path`` imports directly, and the sha256 of its syntax tree
    (comments and formatting left out)."""
    tree = ast.parse(path.read_bytes(), filename=str(path))
    found = {f for name in _names(tree) if name == PACKAGE or name.startswith(PACKAGE + ".")
             for f in _module_files(name, root)}
    return frozenset(found), hashlib.sha256(ast.dump(tree).encode()).digest()


def package_imports(source: str | os.PathLike[str], root: Path = _PACKAGE_ROOT) -> list[Path]:
    """Every module file of the package that ``source`` imports, directly or through other
    package modules, sorted. Imports are read statically, so code reached only through
    ``importlib`` would be missed (the package has none)."""
    seen: set[Path] = set()
    todo = list(_parse(Path(source).resolve(), root)[0])
    while todo:
        f = todo.pop()
        if f not in seen:
            seen.add(f)
            todo.extend(_parse(f, root)[0])
    return sorted(seen)


def script_code_hash(script: str | os.PathLike[str], root: Path = _PACKAGE_ROOT) -> str:
    """sha256 (first 16 hex digits) of a rule script and the package code it runs.

    Python files are hashed by their syntax tree, so comments and formatting do not re-run
    anything; data files beside an imported module (the report's template) are hashed by
    their bytes. Modules in ``NOT_HASHED`` are left out."""
    script = Path(script).resolve()
    imports = package_imports(script, root)
    files = {script} | {f for f in imports if f.relative_to(root).as_posix() not in NOT_HASHED}
    for folder in {f.parent for f in imports}:
        files.update(p for p in folder.iterdir()
                     if p.is_file() and p.suffix not in {".py", ".pyc", ".typed"})
    digest = hashlib.sha256()
    for f in sorted(files):
        digest.update(str(f.relative_to(root) if f.is_relative_to(root) else f.name).encode())
        digest.update(_parse(f, root)[1] if f.suffix == ".py" else f.read_bytes())
    return digest.hexdigest()[:16]


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Full sha256 hex digest of a file, read in chunks (weights can be several GB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def versions(*distributions: str) -> dict[str, str]:
    """Installed versions of the named distributions ("not installed" when absent)."""
    out: dict[str, str] = {}
    for name in distributions:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
