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
