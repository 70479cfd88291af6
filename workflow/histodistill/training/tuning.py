"""Model selection inside the training fold, with the same budget for every model.

Config (``tune:``): ``budget`` candidates per model and fold, ``seed``, and ``space``: per model
family, lists of values of training parameters (``common`` applies to every model trained by
gradient; a family's own entries add to or override it). Candidate 0 is the configured
``train:`` values; the other ``budget - 1`` are distinct draws from the family's grid (fewer when
the grid is smaller), seeded by (tune.seed, fold, family) - so a control (a permuted twin,
self-distillation) tries exactly its base model's candidates. Every candidate is trained from
the same seeds; the one with the best inner-validation c-index (AUC for a binary task) is kept,
ties going to the earlier candidate. The reported (test) fold is never looked at.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from histodistill.errors import InputError
from histodistill.params import from_config

# training parameters that are not model knobs: never searched
NOT_TUNABLE = frozenset({"device", "seed", "cache_mb", "n_bins"})


@dataclass(frozen=True)
class TuneParams:
    budget: int = 1
    seed: int = 0
    space: dict[str, dict[str, list[Any]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.budget < 1:
            raise InputError(f"tune.budget must be >= 1, got {self.budget}")

    @classmethod
    def from_config(cls, cfg: dict[str, Any] | None) -> TuneParams:
        return from_config(cls, cfg or {}, "tune")

    def check(self, tunable: set[str]) -> None:
        """Every searched name is a tunable training parameter with a non-empty list."""
        for family, entries in self.space.items():
            for key, values in entries.items():
                where = f"tune.space.{family}.{key}"
                if key not in tunable:
                    raise InputError(f"{where}: not a tunable train parameter (have "
                                     f"{sorted(tunable)})")
                if not isinstance(values, list) or not values:
                    raise InputError(f"{where}: give a non-empty list of values")


def tunable_names(train_params_cls: type) -> set[str]:
    return {f.name for f in fields(train_params_cls)} - NOT_TUNABLE


def family_space(tune: TuneParams, family: str, gradient: bool) -> dict[str, list[Any]]:
    """The grid of one model family: ``common`` (gradient-trained models only) + its own."""
    space = dict(tune.space.get("common", {})) if gradient else {}
    space.update(tune.space.get(family, {}))
    return dict(sorted(space.items()))


def candidates(tune: TuneParams, family: str, fold: int, gradient: bool,
               defaults: dict[str, Any]) -> list[dict[str, Any]]:
    """Candidate 0 = ``{}`` (the configured values), then up to ``budget - 1`` distinct grid
    points that differ from the defaults, in a seeded order."""
    space = family_space(tune, family, gradient)
    if tune.budget == 1 or not space:
        return [{}]
    keys, sizes = list(space), [len(v) for v in space.values()]
    total = int(np.prod(sizes))
    rng = np.random.default_rng([tune.seed, fold, zlib.crc32(family.encode())])
    out: list[dict[str, Any]] = [{}]
    seen = {tuple(defaults.get(k) for k in keys)}
    for flat in rng.permutation(total) if total <= 100_000 else \
            (rng.integers(total) for _ in range(100 * tune.budget)):
        combo = np.unravel_index(int(flat), sizes)
        values = tuple(space[k][i] for k, i in zip(keys, combo, strict=True))
        if values in seen:
            continue
        seen.add(values)
        out.append(dict(zip(keys, values, strict=True)))
        if len(out) == tune.budget:
            break
    return out
