"""Build a parameter dataclass from a config mapping, refusing keys it does not know."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, TypeVar

from histodistill.errors import InputError

T = TypeVar("T")


def from_config(cls: type[T], cfg: Mapping[str, Any], section: str,
                internal: frozenset[str] = frozenset()) -> T:
    """``cls(**cfg)``, but an unknown key (or an ``internal`` field) is an error naming the
    config ``section`` - a typo must not silently fall back to a default."""
    known = {f.name for f in fields(cls)} - internal  # type: ignore[arg-type]
    unknown = set(cfg) - known
    if unknown:
        raise InputError(f"{section}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
    return cls(**cfg)
