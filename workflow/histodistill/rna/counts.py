"""Read a raw count table (genes x samples) and check it is what it claims to be."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from histodistill.errors import InputError

log = logging.getLogger(__name__)


def _first(items: Sequence[object], n: int = 5) -> str:
    items = list(items)
    more = f" ... (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(map(str, items[:n])) + more


def read_table(path: str | Path) -> pd.DataFrame:
    """A TSV/CSV (optionally gzipped) with gene IDs in the first column."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"RNA table {path} does not exist; check rna: in the cohort config")
    sep = "," if ".csv" in path.suffixes else "\t"
    try:
        # pandas renames a repeated column to "name.1"; read the raw header to catch it
        header = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str).iloc[0, 1:]
        df = pd.read_csv(path, sep=sep, index_col=0)
    except (ValueError, pd.errors.ParserError) as exc:
        raise InputError(f"{path}: cannot parse as a {'CSV' if sep == ',' else 'TSV'} table "
                         f"({exc})") from None
    repeated = header[header.duplicated()].unique().tolist()
    if repeated:
        raise InputError(f"{path}: sample columns appear more than once: {_first(repeated)}")
    df.index = df.index.astype(str)
    df.columns = df.columns.astype(str)
    return df


def read_counts(path: str | Path) -> pd.DataFrame:
    """Raw counts as samples x genes int64.

    The file is genes (rows, first column = gene ID) x samples (columns), as written by
    featureCounts (after dropping annotation columns), HTSeq or STAR. HTSeq's summary rows
    (``__no_feature`` ...) are dropped; duplicated gene IDs are summed, since reads of one gene
    counted under two rows belong together. Anything that is not a non-negative integer is an
    error naming the row and column - normalised tables must not enter the counts path.
    """
    path = Path(path)
    df = read_table(path)
    summary_rows = [g for g in df.index if g.startswith("__")]
    if summary_rows:
        log.info("%s: dropping %d HTSeq summary rows (%s)", path, len(summary_rows),
                 _first(summary_rows))
        df = df.drop(index=summary_rows)
    if df.empty:
        raise InputError(f"{path}: no gene rows")
    non_numeric = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    if non_numeric:
        col = non_numeric[0]
        bad = pd.to_numeric(df[col], errors="coerce").isna() & df[col].notna()
        raise InputError(f"{path}: column {col!r} is not numeric (row {df.index[bad][0]!r} = "
                         f"{df.loc[bad, col].iloc[0]!r}); a count table holds only numbers")
    values = df.to_numpy(dtype=np.float64)
    for check, what in ((np.isnan(values), "missing (NaN)"), (values < 0, "negative")):
        if check.any():
            r, c = np.argwhere(check)[0]
            raise InputError(f"{path}: {int(check.sum())} {what} values, first at gene "
                             f"{df.index[r]!r}, sample {df.columns[c]!r}")
    empty = df.columns[(values == 0).all(axis=0)].tolist()
    if empty:
        raise InputError(f"{path}: sample columns with no counts at all: {_first(empty)}")
    frac = values != np.round(values)
    if frac.any():
        r, c = np.argwhere(frac)[0]
        raise InputError(f"{path}: {int(frac.sum())} non-integer values (first: gene "
                         f"{df.index[r]!r}, sample {df.columns[c]!r} = {values[r, c]}); raw "
                         "counts are integers - this looks like TPM/FPKM/normalised data, which "
                         "must not be fed to DESeq2")
    counts = df.astype(np.int64)
    if counts.index.duplicated().any():
        dups = counts.index[counts.index.duplicated()].unique().tolist()
        log.warning("%s: %d gene IDs appear on several rows (%s); their counts are summed",
                    path, len(dups), _first(dups))
        counts = counts.groupby(level=0, sort=False).sum()
    counts.index.name = "gene"
    return counts.T


def match_samples(counts: pd.DataFrame, patients: Sequence[str], path: str | Path
                  ) -> pd.DataFrame:
    """Keep the sheet's patients' samples (rows); samples unknown to the sheet are an error."""
    known = set(patients)
    unknown = [s for s in counts.index if s not in known]
    if unknown:
        no_rna = [p for p in patients if p not in set(counts.index)]
        raise InputError(
            f"{path}: {len(unknown)} sample columns match no patient of the clinical sheet "
            f"(first: {_first(unknown)}); patients without RNA: {_first(no_rna) or 'none'}. "
            "Column names must be the sheet's patient IDs")
    missing = [p for p in patients if p not in set(counts.index)]
    if missing:
        log.warning("%d of %d patients have no RNA (%s); RNA-dependent models skip them",
                    len(missing), len(patients), _first(missing))
    return counts.loc[[p for p in patients if p in set(counts.index)]]
