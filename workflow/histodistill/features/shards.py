"""Which slides share one feature-extraction job (a shard).

A shard is ``slides_per_job`` consecutive rows of the sample sheet, so the model is loaded
(and compiled) once per shard, while every slide keeps its own feature file. Consecutive rows
keep shards stable as a cohort grows: slides appended to the sheet change only the last shard
and add new ones. Inside a re-run shard, slides whose result is still valid are restored from
the reuse store (``features.reuse``), not recomputed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from histodistill.errors import InputError

FAMILY = "extract_features"  # the rule family's name: profiles set its resources under it


def plan_shards(slide_ids: list[str], slides_per_job: int) -> list[list[str]]:
    """Consecutive runs of ``slides_per_job`` slides, in sheet order."""
    if slides_per_job < 1:
        raise InputError(f"features.slides_per_job must be at least 1, got {slides_per_job}")
    return [slide_ids[i:i + slides_per_job] for i in range(0, len(slide_ids), slides_per_job)]


def shard_rule_names(shards: Iterable[tuple[str, int]]) -> dict[tuple[str, int], str]:
    """``(cohort, k)`` -> rule name ``extract_features_<cohort>_<k>`` (a Python identifier;
    two cohorts whose names differ only in punctuation are an error, not a silent clash)."""
    names: dict[tuple[str, int], str] = {}
    seen: dict[str, str] = {}
    for cohort, k in shards:
        safe = re.sub(r"\W", "_", cohort)
        if seen.setdefault(safe, cohort) != cohort:
            raise InputError(f"cohorts {seen[safe]!r} and {cohort!r} give the same feature-job "
                             f"name ({FAMILY}_{safe}_*); rename one of them")
        names[cohort, k] = f"{FAMILY}_{safe}_{k}"
    return names
