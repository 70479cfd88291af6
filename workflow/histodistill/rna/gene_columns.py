"""Names of a gene-level privileged vector's columns, ``{set}|{gene}``, and the groups they
form. Kept free of heavy imports: training and evaluation read them, rna/genes.py writes them."""

from __future__ import annotations

from histodistill.errors import InputError

SEP = "|"


def column_groups(columns: list[str]) -> list[list[int]]:
    """Indices of the ``{set}|{gene}`` columns of each set, sets in order of appearance."""
    groups: dict[str, list[int]] = {}
    for i, col in enumerate(columns):
        name, sep, _ = col.rpartition(SEP)
        if not sep:
            raise InputError(f"column {col!r} is not a {{set}}{SEP}{{gene}} column; gene "
                             "groups need the gene table of privileged.source: genes")
        groups.setdefault(name, []).append(i)
    return list(groups.values())
