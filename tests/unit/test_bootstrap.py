"""Rule scripts import the package of their own checkout, whatever else is on sys.path."""

from __future__ import annotations

import shutil
import subprocess
import sys

from conftest import REPO


def _other_checkout(tmp_path):
    """A second checkout: a copy of workflow/ whose package says where it lives."""
    other = tmp_path / "other"
    shutil.copytree(REPO / "workflow", other / "workflow",
                    ignore=shutil.ignore_patterns("__pycache__"))
    init = other / "workflow" / "histodistill" / "__init__.py"
    init.write_text(init.read_text() + "\nCHECKOUT = 'other'\n")
    return other


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_a_second_checkout_runs_its_own_package(tmp_path):
    other = _other_checkout(tmp_path)
    # this checkout first (as an editable install puts it), the other one appended behind it
    # (as Snakemake does for the workflow it runs), then the other's rule script starts
    code = (f"import sys; sys.path.insert(0, {str(REPO / 'workflow')!r}); "
            f"sys.path.append({str(other / 'workflow')!r}); "
            f"sys.path.append({str(other / 'workflow' / 'scripts')!r}); "
            "import _bootstrap, histodistill; "
            "print(getattr(histodistill, 'CHECKOUT', 'first'), histodistill.__file__)")
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[0] == "other" and str(other) in out.stdout


def test_a_package_imported_before_the_bootstrap_is_an_error(tmp_path):
    other = _other_checkout(tmp_path)
    code = (f"import sys; sys.path.insert(0, {str(REPO / 'workflow')!r}); import histodistill; "
            f"sys.path.append({str(other / 'workflow' / 'scripts')!r}); import _bootstrap")
    out = _run(code)
    assert out.returncode != 0 and "import _bootstrap before anything else" in out.stderr
