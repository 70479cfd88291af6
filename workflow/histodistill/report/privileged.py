"""The report's answer to "does the privileged information help in this cohort?": each
distilled student against the strongest histology-only baseline and its controls, from the
paired comparisons in metrics.tsv (evaluation/compare.py), with a plain sentence per student."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from histodistill.evaluation.compare import BASELINES, is_student
from histodistill.models.catalog import controls_of
from histodistill.report.tables import comparison_p, fmt


@dataclass(frozen=True)
class Difference:
    other: str
    value: float
    low: float
    high: float
    p: str
    p_holm: str

    @property
    def cell(self) -> str:
        return f"{fmt(self.value)} [{fmt(self.low)}, {fmt(self.high)}]"

    @property
    def above(self) -> bool:
        return self.low > 0

    @property
    def below(self) -> bool:
        return self.high < 0


def _differences(metrics: pd.DataFrame, model: str, n_boot: int) -> dict[str, Difference]:
    rows = metrics[metrics["model"] == model].set_index("metric")
    out = {}
    for metric in rows.index:
        if "_diff_vs_" not in metric:
            continue
        head, other = metric.split("_diff_vs_")
        r = rows.loc[metric]
        p = comparison_p(rows["value"], head, other, n_boot)
        out[other] = Difference(other, float(r["value"]), float(r["ci_low"]),
                                float(r["ci_high"]), p["p"], p["p_holm"])
    return out


def _sentence(model: str, diffs: dict[str, Difference], headline: str) -> str:
    baselines = [diffs[b] for b in BASELINES if b in diffs]
    twin = diffs.get(f"{model}_permuted")
    parts = []
    if baselines:
        strongest = min(baselines, key=lambda d: d.value)
        verdict = ("above" if strongest.above else "below" if strongest.below else
                   "not distinguishable from")
        parts.append(f"{model} is {verdict} the strongest histology-only baseline here "
                     f"({strongest.other}: {headline} difference {strongest.cell})")
    if twin is None:
        parts.append(f"no permuted twin was trained (add {model}_permuted to models), so the "
                     "gain cannot be attributed to the RNA rather than to the extra loss")
    elif twin.above:
        parts.append(f"it beats its permuted twin ({twin.cell}): the patient-specific RNA, "
                     "not only the extra training signal, helped")
    elif twin.below:
        parts.append(f"its permuted twin does better ({twin.cell}): the patient-specific RNA "
                     "did not help")
    else:
        parts.append(f"it is not distinguishable from its permuted twin ({twin.cell}): no "
                     "evidence in this cohort that the RNA itself, rather than the extra "
                     "training signal, helped")
    self_kd = diffs.get("student_kd_self")
    if self_kd is not None and model == "student_kd":
        parts.append(f"against self-distillation from wsi_abmil: {self_kd.cell}")
    return "; ".join(parts) + "."  # starts with the model's name, as written


def privileged_rows(metrics: pd.DataFrame, n_boot: int, headline: str
                    ) -> tuple[list[dict[str, str]], list[str]]:
    """Table rows (student, versus, difference [CI], p, Holm p) and one sentence per student
    (students without any comparison are left out)."""
    rows, sentences = [], []
    for model in dict.fromkeys(metrics["model"]):
        if not is_student(str(model)):
            continue
        diffs = _differences(metrics, str(model), n_boot)
        wanted = [o for o in (*BASELINES, *controls_of(str(model))) if o in diffs]
        if not wanted:
            continue
        rows += [{"model": str(model), "versus": o, "difference": diffs[o].cell,
                  "p": diffs[o].p, "p_holm": diffs[o].p_holm} for o in wanted]
        sentences.append(_sentence(str(model), diffs, headline))
    return rows, sentences


def n_comparisons(metrics: pd.DataFrame) -> int:
    return int(metrics["metric"].str.contains("_diff_p_vs_").sum())
