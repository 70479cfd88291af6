"""The code hash a rule carries as a param: it follows the script's imports through the
package, so an edit re-runs exactly the steps that run the edited code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import REPO, rule_blocks, rule_script
from histodistill.provenance import _PACKAGE_ROOT, package_imports, script_code_hash

SCRIPTS = REPO / "workflow" / "scripts"


@pytest.fixture
def pkg(tmp_path) -> tuple[Path, Path]:
    """A small package named histodistill and a script that uses part of it."""
    root = tmp_path / "histodistill"
    (root / "sub").mkdir(parents=True)
    (root / "__init__.py").write_text('__version__ = "1"\n')
    (root / "sub" / "__init__.py").write_text("")
    (root / "errors.py").write_text("class E(Exception):\n    pass\n")
    (root / "sub" / "a.py").write_text(
        "from histodistill.errors import E\n\n\ndef f():\n"
        "    from histodistill.sub import b  # imported where it is used\n    return b.g()\n")
    (root / "sub" / "b.py").write_text("def g():\n    return 1  # one\n")
    (root / "sub" / "template.j2").write_text("{{ x }}")
    (root / "c.py").write_text("X = 1\n")
    script = tmp_path / "step.py"
    script.write_text("import _bootstrap\nfrom histodistill.sub.a import f\nf()\n")
    return root, script


def _edit(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new))


def _hash(root: Path, script: Path) -> str:
    from histodistill import provenance

    provenance._parse.cache_clear()  # files are edited in place between calls
    return script_code_hash(script, root)


def test_package_imports_follow_function_level_and_transitive_imports(pkg):
    root, script = pkg
    names = {p.relative_to(root).as_posix() for p in package_imports(script, root)}
    assert names == {"__init__.py", "sub/__init__.py", "sub/a.py", "sub/b.py", "errors.py"}


@pytest.mark.parametrize(("file", "old", "new", "changes"), [
    ("sub/b.py", "return 1", "return 2", True),           # code the step runs, indirectly
    ("sub/template.j2", "x", "y", True),                   # a data file beside it
    ("c.py", "X = 1", "X = 2", False),                     # code the step does not import
    ("sub/b.py", "# one", "# two", False),                 # a comment
    ("sub/b.py", "return 1", "return  1", False),          # formatting
    ("errors.py", "pass", "'''a message'''", False),       # exception classes: NOT_HASHED
    ("__init__.py", '"1"', '"2"', False),                  # the package version
])
def test_an_edit_changes_the_hash_only_when_it_can_change_an_output(pkg, file, old, new,
                                                                    changes):
    root, script = pkg
    before = _hash(root, script)
    _edit(root / file, old, new)
    assert (_hash(root, script) != before) is changes


def test_editing_the_script_itself_changes_the_hash(pkg):
    root, script = pkg
    before = _hash(root, script)
    _edit(script, "f()", "f()\nf()")
    assert _hash(root, script) != before


def _relative(script: str) -> set[str]:
    return {p.relative_to(_PACKAGE_ROOT).as_posix() for p in package_imports(SCRIPTS / script)}


def test_each_real_step_hashes_the_code_it_runs_and_not_the_rest():
    assert {"wsi/segmentation.py", "wsi/tiling.py", "wsi/slide.py"} <= _relative(
        "segment_and_tile.py")
    assert not any(m.startswith(("models/", "training/", "rna/")) for m in _relative(
        "segment_and_tile.py"))
    assert {"models/mope.py", "models/ghanet.py", "training/loop.py"} <= _relative("train.py")
    assert {"report/html.py", "report/tables.py"} <= _relative("report.py")
    assert not any(m.startswith("evaluation/") for m in _relative("train.py"))


def test_every_rule_carries_the_code_hash_of_its_own_script():
    """``code=CODE[...]`` must name the rule's own script (a copy-paste slip would make an
    edit re-run the wrong step), and nothing reaches package code through importlib."""
    for name, block in rule_blocks().items():
        script = rule_script(block)
        if script is None:
            continue  # the rule all has no action
        code = re.search(r'code=CODE\["(\w+)"\]', block)
        assert code and code.group(1) == script, f"rule {name}"
    for module in _PACKAGE_ROOT.rglob("*.py"):
        assert "import_module(" not in module.read_text(), module
