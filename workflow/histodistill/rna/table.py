"""Read the expression tables people actually have, and say what was done to them.

One entry point, :func:`read_expression`, turns a table into samples x HGNC-symbol genes:

* **Layout.** TSV/CSV (optionally gzipped), gene IDs in the first column; or a folder of
  per-sample files (GDC STAR counts, STAR ReadsPerGene, HTSeq; see rna/per_sample.py).
  Leading ``#`` lines (featureCounts' command line) are skipped; featureCounts annotation columns
  (Chr/Start/End/Strand/Length) and GDC's ``gene_type`` are dropped; a ``gene_name`` column
  (GDC) maps Ensembl IDs to symbols. HTSeq (``__no_feature`` ...) and STAR
  (``N_unmapped`` ...) summary rows are dropped.
* **Orientation** (``auto``): the axis whose labels are patient IDs of the clinical sheet holds
  the samples. If both or neither do, the user must declare it.
* **Kind** (``auto``): a table of non-negative integers is raw counts; anything else must be
  declared (tpm, fpkm, log2, zscore), because guessing log- vs z-scale is not safe.
* **Gene IDs:** HGNC symbols are used as they are. Ensembl IDs lose their version suffix
  (``ENSG00000141510.16`` -> ``ENSG00000141510``; GDC's ``_PAR_Y`` copies of X/Y
  pseudo-autosomal genes are dropped) and are mapped to symbols through the table's
  ``gene_name`` column or a ``gene_map`` TSV (gene_id, symbol); IDs without a symbol are
  dropped and counted.
* **Duplicated genes** (repeated rows, or several Ensembl IDs with one symbol): raw counts are
  summed (reads of one gene belong together); other kinds keep the row with the highest mean
  over samples (WGCNA's "MaxMean" rule), since summing TPMs or z-scores has no meaning.
* **Values:** non-numeric cells, NaNs, empty sample columns, negative values (counts, TPM,
  FPKM) and non-integer "counts" are errors that name the row and column.
"""

from __future__ import annotations

import gzip
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from histodistill.errors import InputError
from histodistill.params import from_config

log = logging.getLogger(__name__)

KINDS = ("counts", "tpm", "fpkm", "log2", "zscore")
ORIENTATIONS = ("genes_x_samples", "samples_x_genes")
ANNOTATION_COLUMNS = {"chr", "start", "end", "strand", "length", "gene_type", "gene_biotype"}
SYMBOL_COLUMNS = ("gene_name", "symbol", "gene_symbol", "hgnc_symbol")
_ENSEMBL = re.compile(r"^(ENS[A-Z]*G\d{6,})(\.\d+)?(_PAR_Y)?$")
_SUMMARY_ROW = re.compile(r"^(__|N_(unmapped|multimapping|noFeature|ambiguous)$)")


@dataclass(frozen=True)
class RnaSource:
    """A cohort's ``rna:`` block of the config (see config/README.md)."""

    path: str
    kind: str = "auto"
    orientation: str = "auto"
    gene_map: str | None = None
    value_column: str | None = None

    @classmethod
    def from_config(cls, cfg: dict, section: str = "rna") -> RnaSource:
        source = from_config(cls, cfg, section)
        if source.kind not in ("auto", *KINDS):
            raise InputError(f"{section}.kind must be one of auto, {', '.join(KINDS)}; "
                             f"got {source.kind!r}")
        if source.orientation not in ("auto", *ORIENTATIONS):
            raise InputError(f"{section}.orientation must be auto, {' or '.join(ORIENTATIONS)}; "
                             f"got {source.orientation!r}")
        return source


@dataclass
class Expression:
    """Samples (patient IDs) x genes (HGNC symbols) plus an account of every decision."""

    values: pd.DataFrame
    kind: str
    notes: list[str] = field(default_factory=list)


def first(items: Sequence[object], n: int = 5) -> str:
    items = list(items)
    more = f" ... (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(map(str, items[:n])) + more


def _comment_lines(path: Path) -> int:
    opener = gzip.open if path.suffix == ".gz" else open
    n = 0
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.startswith("#"):
                break
            n += 1
    return n


def read_table(path: str | Path) -> pd.DataFrame:
    """A TSV/CSV (optionally gzipped) with row IDs in the first column, as strings."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"RNA table {path} does not exist; check rna.path in the cohort config")
    sep = "," if ".csv" in path.suffixes else "\t"
    skip = _comment_lines(path)
    try:
        # pandas renames a repeated column to "name.1"; read the raw header to catch it
        header = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str,
                             skiprows=skip).iloc[0, 1:]
        df = pd.read_csv(path, sep=sep, index_col=0, skiprows=skip, low_memory=False)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot parse as a {'CSV' if sep == ',' else 'TSV'} table "
                         f"({exc})") from None
    repeated = header[header.duplicated()].unique().tolist()
    if repeated:
        raise InputError(f"{path}: columns appear more than once: {first(repeated)}")
    df.index = df.index.astype(str).str.strip()
    df.columns = df.columns.astype(str).str.strip()
    return df


def _orient(df: pd.DataFrame, patients: Sequence[str], orientation: str, path: Path,
            notes: list[str]) -> pd.DataFrame:
    """Genes x samples, whatever the file's layout."""
    known = set(patients)
    in_cols = sum(c in known for c in df.columns)
    in_rows = sum(r in known for r in df.index)
    if orientation == "auto":
        if in_cols and not in_rows:
            orientation = "genes_x_samples"
        elif in_rows and not in_cols:
            orientation = "samples_x_genes"
        else:
            where = "both the rows and the columns" if in_cols else "neither rows nor columns"
            raise InputError(
                f"{path}: cannot tell samples from genes - patient IDs of the clinical sheet "
                f"are in {where} (first columns: {first(df.columns)}; first rows: "
                f"{first(df.index)}). Set rna.orientation to genes_x_samples or "
                "samples_x_genes, and make the sample IDs the sheet's patient IDs")
        notes.append(f"orientation detected: {orientation}")
    if orientation == "samples_x_genes":
        df = df.T
    return df


def _split_annotation(df: pd.DataFrame, notes: list[str]) -> tuple[pd.DataFrame, pd.Series | None]:
    """Drop annotation columns; return the gene-symbol column if the table has one."""
    lower = {c: c.lower() for c in df.columns}
    symbol_col = next((c for c in df.columns if lower[c] in SYMBOL_COLUMNS), None)
    symbols = df[symbol_col].astype(str) if symbol_col else None
    drop = [c for c in df.columns if lower[c] in ANNOTATION_COLUMNS or c == symbol_col]
    if drop:
        notes.append(f"annotation columns dropped: {', '.join(drop)}")
    return df.drop(columns=drop), symbols


def _summary_rows(df: pd.DataFrame, path: Path, notes: list[str]) -> np.ndarray:
    """Mask of HTSeq/STAR summary rows (``__no_feature``, ``N_unmapped`` ...)."""
    mask = np.array([bool(_SUMMARY_ROW.match(g)) for g in df.index], dtype=bool)
    if mask.any():
        rows = df.index[mask]
        notes.append(f"{len(rows)} HTSeq/STAR summary rows dropped ({first(rows)})")
        log.info("%s: dropping %d summary rows (%s)", path, len(rows), first(rows))
    if mask.all():
        raise InputError(f"{path}: no gene rows")
    return mask


def _numeric(df: pd.DataFrame, path: Path) -> np.ndarray:
    non_numeric = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    if non_numeric:
        col = non_numeric[0]
        bad = pd.to_numeric(df[col], errors="coerce").isna() & df[col].notna()
        if bad.any():
            raise InputError(f"{path}: column {col!r} is not numeric (row {df.index[bad][0]!r} "
                             f"= {df.loc[bad, col].iloc[0]!r}); an expression table holds only "
                             "numbers besides the gene IDs")
    values = df.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    empty = df.columns[np.isnan(values).all(axis=0)].tolist()
    if empty:
        raise InputError(f"{path}: sample columns with no values at all: {first(empty)}")
    return values


def _check_values(values: np.ndarray, df: pd.DataFrame, kind: str, path: Path) -> None:
    def where(mask: np.ndarray) -> str:
        r, c = np.argwhere(mask)[0]
        return f"first at gene {df.index[r]!r}, sample {df.columns[c]!r}"

    nan = np.isnan(values)
    if nan.any():
        raise InputError(f"{path}: {int(nan.sum())} missing (NaN) values, {where(nan)}; fill "
                         "or remove them before the run (histodistill does not impute)")
    if kind in ("counts", "tpm", "fpkm"):
        neg = values < 0
        if neg.any():
            raise InputError(f"{path}: {int(neg.sum())} negative values, {where(neg)}; "
                             f"{kind} cannot be negative - is rna.kind right (log2/zscore)?")
    if kind == "counts":
        frac = values != np.round(values)
        if frac.any():
            r, c = np.argwhere(frac)[0]
            raise InputError(
                f"{path}: {int(frac.sum())} non-integer values (first: gene {df.index[r]!r}, "
                f"sample {df.columns[c]!r} = {values[r, c]}); raw counts are integers - this "
                "looks like TPM/FPKM/normalised data, which must not be fed to DESeq2. Set "
                "rna.kind to tpm, fpkm, log2 or zscore")
        zero = df.columns[(values == 0).all(axis=0)].tolist()
        if zero:
            raise InputError(f"{path}: sample columns with no counts at all: {first(zero)}")


def _detect_kind(values: np.ndarray, path: Path, notes: list[str]) -> str:
    finite = values[np.isfinite(values)]
    if finite.size and (finite >= 0).all() and (finite == np.round(finite)).all():
        notes.append("kind detected: counts (every value is a non-negative integer)")
        return "counts"
    raise InputError(
        f"{path}: the values are not raw counts (range {finite.min():.4g} to {finite.max():.4g},"
        f" {np.mean(finite == np.round(finite)):.0%} integers) and their scale cannot be guessed "
        "safely; set rna.kind to tpm, fpkm, log2 (e.g. log2(TPM+1)) or zscore")


def _gene_symbols(genes: pd.Index, symbols: pd.Series | None, gene_map: str | None,
                  path: Path, notes: list[str]) -> pd.Series:
    """Symbol per row (NaN where an Ensembl ID has none)."""
    match = genes.str.extract(_ENSEMBL.pattern)
    is_ensembl = match[0].notna().to_numpy()
    if is_ensembl.mean() < 0.5:
        return pd.Series(genes, index=genes)
    stripped = match[0].where(match[0].notna(), pd.Series(genes)).to_numpy()
    if symbols is not None:
        mapping = pd.Series(symbols.to_numpy(), index=genes)
        source = "the table's gene-name column"
    elif gene_map is not None:
        table = read_table(gene_map)
        if table.shape[1] < 1:
            raise InputError(f"{gene_map}: a gene map needs two columns, gene_id and symbol")
        ids = table.index.str.replace(r"\.\d+$", "", regex=True)
        lookup = pd.Series(table.iloc[:, 0].astype(str).to_numpy(), index=ids)
        lookup = lookup[~lookup.index.duplicated()]
        mapping = pd.Series(lookup.reindex(stripped).to_numpy(), index=genes)
        source = str(gene_map)
    else:
        raise InputError(
            f"{path}: gene IDs are Ensembl ({first(genes[is_ensembl])}) but the gene sets use "
            "HGNC symbols; give rna.gene_map (a TSV of gene_id, symbol, e.g. exported from "
            "Ensembl BioMart or GENCODE) or a table with a gene_name column")
    mapping = mapping.replace({"": np.nan, "nan": np.nan})
    unmapped = mapping.isna().to_numpy()
    notes.append(f"Ensembl IDs mapped to symbols through {source}: {int((~unmapped).sum())} "
                 f"mapped, {int(unmapped.sum())} without a symbol dropped")
    return mapping


def _collapse(df: pd.DataFrame, kind: str, path: Path, notes: list[str]) -> pd.DataFrame:
    """One row per gene: counts summed, other kinds the row with the highest mean."""
    dup = df.index.duplicated(keep=False)
    if not dup.any():
        return df
    names = df.index[dup].unique().tolist()
    if kind == "counts":
        df = df.groupby(level=0, sort=False).sum()
        rule = "summed"
    else:
        order = np.argsort(-df.mean(axis=1).to_numpy(), kind="stable")
        best = df.iloc[order]
        best = best[~best.index.duplicated(keep="first")]
        df = best.loc[df.index.unique()]
        rule = "the row with the highest mean kept"
    notes.append(f"{len(names)} genes on several rows, {rule} ({first(names)})")
    log.warning("%s: %d genes appear on several rows (%s); %s", path, len(names),
                first(names), rule)
    return df


def read_expression(source: RnaSource, patients: Sequence[str]) -> Expression:
    """The table at ``source.path`` as samples x symbols, checked; see the module docstring."""
    path = Path(source.path)
    notes: list[str] = []
    if path.is_dir():
        from histodistill.rna.per_sample import read_sample_folder

        df = read_sample_folder(path, "counts" if source.kind == "auto" else source.kind,
                                source.value_column)
        notes.append(f"{df.shape[1] - ('gene_name' in df.columns)} per-sample files merged")
    else:
        df = read_table(path)
    df = _orient(df, patients, source.orientation, path, notes)
    df, symbols = _split_annotation(df, notes)
    keep = ~_summary_rows(df, path, notes) & ~df.index.str.endswith("_PAR_Y")
    if df.index.str.endswith("_PAR_Y").any():
        notes.append(f"{int(df.index.str.endswith('_PAR_Y').sum())} _PAR_Y rows (Y copies of "
                     "pseudo-autosomal genes) dropped")
    df = df.loc[keep]
    symbols = symbols.loc[keep] if symbols is not None else None
    values = _numeric(df, path)
    kind = _detect_kind(values, path, notes) if source.kind == "auto" else source.kind
    _check_values(values, df, kind, path)
    df = pd.DataFrame(values, index=df.index, columns=df.columns)
    mapped = _gene_symbols(df.index, symbols, source.gene_map, path, notes)
    df.index = pd.Index(mapped.to_numpy(), name="gene")
    df = df.loc[df.index.notna()]
    df = _collapse(df, kind, path, notes)
    if kind == "counts":
        df = df.astype(np.int64)
    if kind == "zscore":
        notes.append("z-scores are used as given; they were standardised per gene by the data "
                     "provider over its whole cohort, a fit histodistill cannot move into folds")
    for note in notes:
        log.info("%s: %s", path, note)
    return Expression(values=df.T, kind=kind, notes=notes)


def match_samples(values: pd.DataFrame, patients: Sequence[str], path: str | Path
                  ) -> pd.DataFrame:
    """Keep the sheet's patients' samples (rows); samples unknown to the sheet are an error."""
    known = set(patients)
    unknown = [s for s in values.index if s not in known]
    if unknown:
        no_rna = [p for p in patients if p not in set(values.index)]
        raise InputError(
            f"{path}: {len(unknown)} samples match no patient of the clinical sheet "
            f"(first: {first(unknown)}); patients without RNA: {first(no_rna) or 'none'}. "
            "Sample IDs must be the sheet's patient IDs")
    present = set(values.index)
    missing = [p for p in patients if p not in present]
    if missing:
        log.warning("%d of %d patients have no RNA (%s); RNA-dependent models skip them",
                    len(missing), len(patients), first(missing))
    return values.loc[[p for p in patients if p in present]]
