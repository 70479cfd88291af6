"""Read gene sets from a local GMT file (never from the network)."""

from __future__ import annotations

from pathlib import Path

from histodistill.errors import InputError


def read_gmt(path: str | Path) -> dict[str, list[str]]:
    """Gene sets as {name: genes} from a GMT (name, description, genes... per tab-separated line).

    Duplicate set names are an error (they would silently shadow each other); duplicated genes
    within a set are kept once, in first-seen order.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"gene-set file {path} does not exist; give a local GMT path in the "
                         "config (genesets:), e.g. resources/genesets/h.all.v7.0.symbols.gmt")
    sets: dict[str, list[str]] = {}
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            fields = [f.strip() for f in line.rstrip("\n\r").split("\t")]
            if not any(fields):
                continue
            if len(fields) < 3:
                raise InputError(f"{path}, line {lineno}: a GMT line needs a name, a description "
                                 "and at least one gene, separated by tabs")
            name = fields[0]
            if name in sets:
                raise InputError(f"{path}, line {lineno}: gene set {name!r} appears twice")
            sets[name] = list(dict.fromkeys(g for g in fields[2:] if g))
    if not sets:
        raise InputError(f"{path} holds no gene sets")
    return sets
