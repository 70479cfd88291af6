"""One name per step: every rule runs the script of its own name."""

from __future__ import annotations

import re

from conftest import REPO


def test_every_rule_runs_the_script_of_its_name():
    rules = {}
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        text = smk.read_text()
        for block in re.split(r"\n(?=rule |\s+rule:)", text):
            name = re.match(r"\s*rule (\w+):", block)
            script = re.search(r'script:\s*\n\s*"\.\./scripts/(\w+)\.py"', block)
            if script:
                rules[name.group(1) if name else "extract_features"] = script.group(1)
    assert len(rules) >= 15
    assert {rule: script for rule, script in rules.items() if rule != script} == {}
    scripts = {p.stem for p in (REPO / "workflow" / "scripts").glob("*.py")} - {"_bootstrap"}
    assert scripts == set(rules.values())  # and no script without its rule


def test_the_rules_are_formatted_as_snakefmt_writes_them():
    """The Snakemake ecosystem's formatter (black for rules), directives in their written
    order: run ``snakefmt --no-sort -l 100 Snakefile workflow/rules`` to fix."""
    import subprocess
    import sys
    from pathlib import Path

    snakefmt = Path(sys.executable).parent / "snakefmt"
    proc = subprocess.run([str(snakefmt), "--check", "--no-sort", "-l", "100", "Snakefile",
                           "workflow/rules"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
