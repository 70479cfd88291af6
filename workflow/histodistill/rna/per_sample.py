"""Per-sample RNA files (one file per patient) merged into one genes x samples table.

A folder given as ``rna.path`` holds one file per sample, named ``<patient>.<anything>``
(e.g. ``TCGA-2F-A9KO.rna_seq.augmented_star_gene_counts.tsv``; rename or symlink GDC's UUID
names to patient IDs). Recognised layouts, by their content:

* **GDC STAR "augmented" counts** (``# gene-model`` line, then ``gene_id, gene_name,
  gene_type, unstranded, stranded_first, stranded_second, tpm_unstranded, fpkm_unstranded,
  fpkm_uq_unstranded``): the value column is ``unstranded`` for counts, ``tpm_unstranded`` /
  ``fpkm_unstranded`` for those kinds; ``gene_name`` is kept for Ensembl -> symbol mapping.
* **STAR ReadsPerGene.out.tab** (no header, 4 columns: gene, unstranded, forward, reverse).
* **HTSeq-count output** (no header, 2 columns: gene, count).

``rna.value_column`` picks another column (a GDC column name, or 2-4 for STAR's columns): use
the stranded column that matches the library protocol.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from histodistill.errors import InputError

GDC_DEFAULT = {"counts": "unstranded", "tpm": "tpm_unstranded", "fpkm": "fpkm_unstranded"}


def _read_one(path: Path, kind: str, value_column: str | None
              ) -> tuple[pd.Series, pd.Series | None]:
    """(values indexed by gene ID, gene names or None) of one per-sample file."""
    with path.open(encoding="utf-8", errors="replace") as fh:
        first = fh.readline()
    try:
        if first.startswith("#") or first.startswith("gene_id\t"):
            table = pd.read_csv(path, sep="\t", comment="#", index_col=0)
            column = value_column or GDC_DEFAULT.get(kind, "unstranded")
            if column not in table.columns:
                raise InputError(f"{path}: no column {column!r} (columns: "
                                 f"{', '.join(table.columns)}); set rna.value_column")
            names = table["gene_name"].astype(str) if "gene_name" in table.columns else None
            return table[column], names
        table = pd.read_csv(path, sep="\t", header=None, index_col=0)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot parse as a per-sample expression file "
                         f"({exc})") from None
    if table.shape[1] not in (1, 3):
        raise InputError(f"{path}: {table.shape[1] + 1} columns; expected a GDC STAR table, "
                         "STAR ReadsPerGene.out.tab (4 columns) or HTSeq output (2 columns)")
    position = int(value_column) if value_column else 2
    if not 2 <= position <= table.shape[1] + 1:
        raise InputError(f"{path}: rna.value_column {value_column!r} is not a column of this "
                         f"{table.shape[1] + 1}-column file")
    return table.iloc[:, position - 2], None


def read_sample_folder(folder: str | Path, kind: str, value_column: str | None = None
                       ) -> pd.DataFrame:
    """Genes x samples (plus ``gene_name`` when the files carry it) from a folder of files."""
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    if not files:
        raise InputError(f"RNA folder {folder} holds no files")
    columns, names = {}, None
    for path in files:
        sample = path.name.split(".", 1)[0]
        if sample in columns:
            raise InputError(f"{folder}: two files for sample {sample!r} (the patient ID is "
                             "the file name up to its first '.')")
        values, gene_names = _read_one(path, kind, value_column)
        if columns and not values.index.equals(next(iter(columns.values())).index):
            raise InputError(f"{path}: its gene IDs differ from {files[0].name}'s; all files "
                             "must come from the same annotation")
        columns[sample] = values
        names = gene_names if names is None else names
    table = pd.DataFrame(columns)
    if names is not None:
        table.insert(0, "gene_name", names)
    table.index = table.index.astype(str)
    return table
