"""Read gene sets from local files (never from the network): GMT, or a gene-family table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

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


def read_family_table(path: str | Path) -> dict[str, list[str]]:
    """Gene sets from a table with one column per set and genes down the rows (CSV or TSV),
    the layout of MCAT's six gene families (``signatures.csv``); empty cells pad columns."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"gene-set table {path} does not exist")
    sep = "," if ".csv" in path.suffixes else "\t"
    table = pd.read_csv(path, sep=sep, dtype=str)
    repeated = [c for c in table.columns if "." in c and c.rsplit(".", 1)[0] in table.columns]
    if repeated:
        raise InputError(f"{path}: gene-set columns appear twice: {repeated}")
    sets = {str(col): list(dict.fromkeys(g.strip() for g in table[col].dropna() if g.strip()))
            for col in table.columns}
    empty = [name for name, genes in sets.items() if not genes]
    if empty or not sets:
        raise InputError(f"{path}: gene-set columns without genes: {empty or 'all'}")
    return sets


def read_gene_sets(path: str | Path) -> dict[str, list[str]]:
    """A .gmt file, or a .csv/.tsv table of gene families (one column per set)."""
    suffixes = Path(path).suffixes
    if ".gmt" in suffixes:
        return read_gmt(path)
    if ".csv" in suffixes or ".tsv" in suffixes:
        return read_family_table(path)
    raise InputError(f"gene sets {path}: expected a .gmt file or a .csv/.tsv table with one "
                     "column per gene set")
