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
* **Values:** non-numeric cells, NaNs, +-inf (a log of 0), empty sample columns, negative
  values (counts, TPM, FPKM) and non-integer "counts" are errors that name the row and column.
* **Delimiter:** tab, comma or semicolon, whichever splits the header into the most fields
  (the file extension breaks ties); a file that has one column with all three is an error.
* **Samples and patients.** The clinical sheet defines the cohort. Sample IDs become patient
  IDs through ``rna.patient_from_sample`` (a regular expression whose first group is the
  patient ID, or ``tcga`` for TCGA barcodes; default: the sample ID is the patient ID).
  Samples of no patient of the sheet are left out and listed (``rna.extra_samples: drop``,
  the default) or are an error (``error``). Several samples of one patient are an error naming
  them (``rna.duplicate_samples: error``, the default) or are combined (``aggregate``: counts
  summed; TPM/FPKM averaged on the log2(x + 1) scale and transformed back; log2 and z-scores
  averaged). IDs that match a patient only when upper/lower case is ignored, or only as the
  start of a barcode, are named in the error or warning with the fix.
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
EXTRA_SAMPLES = ("drop", "error")
DUPLICATE_SAMPLES = ("error", "aggregate")
TCGA_PATIENT = r"^(TCGA-[A-Za-z0-9]{2}-[A-Za-z0-9]{4})"
DELIMITERS = {"\t": "tab", ",": "comma", ";": "semicolon"}
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
    patient_from_sample: str | None = None
    extra_samples: str = "drop"
    duplicate_samples: str = "error"

    @classmethod
    def from_config(cls, cfg: dict, section: str = "rna") -> RnaSource:
        source = from_config(cls, cfg, section)
        for key, allowed in (("extra_samples", EXTRA_SAMPLES),
                             ("duplicate_samples", DUPLICATE_SAMPLES)):
            if getattr(source, key) not in allowed:
                raise InputError(f"{section}.{key} must be {' or '.join(allowed)}; got "
                                 f"{getattr(source, key)!r}")
        source.patient_pattern(section)
        if source.kind not in ("auto", *KINDS):
            raise InputError(f"{section}.kind must be one of auto, {', '.join(KINDS)}; "
                             f"got {source.kind!r}")
        if source.orientation not in ("auto", *ORIENTATIONS):
            raise InputError(f"{section}.orientation must be auto, {' or '.join(ORIENTATIONS)}; "
                             f"got {source.orientation!r}")
        return source

    def patient_pattern(self, section: str = "rna") -> re.Pattern | None:
        """The compiled ``patient_from_sample`` (``tcga`` = TCGA barcodes), or None."""
        if self.patient_from_sample is None:
            return None
        text = TCGA_PATIENT if self.patient_from_sample == "tcga" else self.patient_from_sample
        try:
            pattern = re.compile(text)
        except re.error as exc:
            raise InputError(f"{section}.patient_from_sample {text!r} is not a regular "
                             f"expression ({exc})") from None
        if pattern.groups < 1:
            raise InputError(f"{section}.patient_from_sample {text!r} needs a group, in "
                             "parentheses, that captures the patient ID")
        return pattern


@dataclass
class Expression:
    """Samples (patient IDs of the sheet, in its order) x genes (HGNC symbols) plus an
    account of every decision; ``left_out``: the table's samples of no patient."""

    values: pd.DataFrame
    kind: str
    notes: list[str] = field(default_factory=list)
    left_out: list[str] = field(default_factory=list)


def to_patients(labels: Sequence[str], pattern: re.Pattern | None) -> list[str]:
    """Each sample label's patient ID: the pattern's first group where it matches (at the
    start), else the label itself."""
    if pattern is None:
        return list(labels)
    out = []
    for label in labels:
        match = pattern.match(label)
        out.append(match.group(1) if match else label)
    return out


def id_advice(labels: Sequence[str], patients: Sequence[str]) -> str:
    """Why sample labels miss the sheet's patient IDs, when it can be told, with the fix:
    IDs that differ only by case, or barcodes that start with a patient ID."""
    known = set(patients)
    by_case = {p.casefold(): p for p in patients}
    case = [(s, by_case[s.casefold()]) for s in labels
            if s not in known and s.casefold() in by_case]
    if case:
        s, p = case[0]
        return (f" {len(case)} sample IDs match a patient only when upper/lower case is ignored "
                f"(e.g. sample {s!r}, patient {p!r}); IDs are compared exactly, so make them "
                "identical in the table or the sheet.")
    ordered = sorted(known, key=len, reverse=True)
    prefixed = []
    for s in labels:
        if s in known:
            continue
        hit = next((p for p in ordered if s.startswith(p) and s[len(p):len(p) + 1] in "-._"
                    and len(s) > len(p)), None)
        if hit is not None:
            prefixed.append((s, hit))
    if prefixed:
        s, p = prefixed[0]
        tcga = " (TCGA barcodes: rna.patient_from_sample: tcga)" if s.startswith("TCGA-") else ""
        return (f" {len(prefixed)} sample IDs are a patient ID followed by more (e.g. sample "
                f"{s!r}, patient {p!r}): sample barcodes, not patient IDs. Set "
                f"rna.patient_from_sample to a regular expression whose first group is the "
                f"patient ID{tcga}, or rename the samples.")
    return ""


def first(items: Sequence[object], n: int = 5) -> str:
    items = list(items)
    more = f" ... (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(map(str, items[:n])) + more


def _head(path: Path) -> tuple[int, str]:
    """(number of leading ``#`` lines, the first line after them)."""
    opener = gzip.open if path.suffix == ".gz" else open
    n = 0
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.startswith("#"):
                return n, line.rstrip("\r\n")
            n += 1
    return n, ""


def _delimiter(path: Path, header: str) -> str:
    """The delimiter that splits the header into the most fields; the extension's (comma
    for .csv, else tab) on a tie. One field with every delimiter is an error."""
    expected = "," if ".csv" in path.suffixes else "\t"
    counts = {d: header.count(d) for d in DELIMITERS}
    best = max(counts, key=lambda d: (counts[d], d == expected))
    if counts[best] == 0:
        raise InputError(
            f"{path}: the header line has one column with tab, comma and semicolon as the "
            f"delimiter (it starts {header[:60]!r}); an expression table has the gene (or "
            "sample) IDs in the first column and one column per sample (or gene)")
    if best != expected:
        log.warning("%s: %s-separated despite its extension; read as such", path,
                    DELIMITERS[best])
    return best


def read_table(path: str | Path) -> pd.DataFrame:
    """A TSV/CSV (optionally gzipped) with row IDs in the first column, as strings; the
    delimiter is detected. Repeated column names are kept as they are."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"RNA table {path} does not exist; check rna.path in the cohort config")
    skip, first_line = _head(path)
    sep = _delimiter(path, first_line)
    try:
        # pandas renames a repeated column to "name.1"; put the raw header back
        header = pd.read_csv(path, sep=sep, header=None, nrows=1, dtype=str,
                             skiprows=skip).iloc[0, 1:]
        df = pd.read_csv(path, sep=sep, index_col=0, skiprows=skip, low_memory=False)
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot parse as a {DELIMITERS[sep]}-separated table "
                         f"({exc})") from None
    if len(header) == df.shape[1]:
        df.columns = header.fillna("").to_numpy()
    df.index = df.index.astype(str).str.strip()
    df.columns = df.columns.astype(str).str.strip()
    return df


def _orient(df: pd.DataFrame, patients: Sequence[str], orientation: str,
            pattern: re.Pattern | None, path: Path, notes: list[str]) -> pd.DataFrame:
    """Genes x samples, whatever the file's layout."""
    known = set(patients)
    in_cols = sum(c in known for c in to_patients(df.columns, pattern))
    in_rows = sum(r in known for r in to_patients(df.index, pattern))
    if orientation == "auto":
        if in_cols and not in_rows:
            orientation = "genes_x_samples"
        elif in_rows and not in_cols:
            orientation = "samples_x_genes"
        else:
            where = "both the rows and the columns" if in_cols else "neither rows nor columns"
            advice = "" if in_cols else (id_advice(list(df.columns), patients)
                                         or id_advice(list(df.index), patients))
            raise InputError(
                f"{path}: cannot tell samples from genes - patient IDs of the clinical sheet "
                f"are in {where} (first columns: {first(df.columns)}; first rows: "
                f"{first(df.index)}).{advice} Otherwise set rna.orientation to genes_x_samples "
                "or samples_x_genes, and make the sample IDs the sheet's patient IDs")
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
    """The table as float64, column by position (sample labels may repeat here); +-inf is
    an error naming the cell."""
    numeric = all(pd.api.types.is_numeric_dtype(t) for t in df.dtypes)
    columns = [df.to_numpy(dtype=np.float64)] if numeric else []
    for i in range(0 if numeric else df.shape[1]):
        col = df.iloc[:, i]
        if not pd.api.types.is_numeric_dtype(col):
            numbers = pd.to_numeric(col, errors="coerce")
            bad = numbers.isna() & col.notna()
            if bad.any():
                raise InputError(f"{path}: column {df.columns[i]!r} is not numeric (row "
                                 f"{df.index[bad.to_numpy()][0]!r} = {col[bad].iloc[0]!r}); "
                                 "an expression table holds only numbers besides the gene IDs")
            col = numbers
        columns.append(col.to_numpy(dtype=np.float64))
    values = np.column_stack(columns) if columns else np.empty((len(df), 0))
    empty = df.columns[np.isnan(values).all(axis=0)].tolist()
    if empty:
        raise InputError(f"{path}: sample columns with no values at all: {first(empty)}")
    inf = np.isinf(values)
    if inf.any():
        r, c = np.argwhere(inf)[0]
        raise InputError(
            f"{path}: {int(inf.sum())} infinite values, first at gene {df.index[r]!r}, sample "
            f"{df.columns[c]!r} = {values[r, c]}; a log of 0 written without a pseudocount? "
            "Write log2(x + 1) (or the linear values with rna.kind tpm/fpkm)")
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


def _detect_kind(values: np.ndarray, df: pd.DataFrame, path: Path, notes: list[str]) -> str:
    finite = values[np.isfinite(values)]
    integers = bool(finite.size) and bool((finite == np.round(finite)).all())
    if integers and (finite >= 0).all():
        notes.append("kind detected: counts (every value is a non-negative integer)")
        return "counts"
    if integers:
        r, c = np.argwhere(values < 0)[0]
        raise InputError(
            f"{path}: every value is an integer, as in raw counts, but {int((finite < 0).sum())}"
            f" are negative, first at gene {df.index[r]!r}, sample {df.columns[c]!r} = "
            f"{values[r, c]:g}. Counts cannot be negative: check that cell and how the table "
            "was made (a corrupted count table must not be declared as something else); only "
            "if the table really holds rounded log2 values or z-scores, set rna.kind")
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


def _select_samples(df: pd.DataFrame, patients: Sequence[str], source: RnaSource,
                    pattern: re.Pattern | None, path: Path, notes: list[str]
                    ) -> tuple[pd.DataFrame, list[str], list[str]]:
    """(the sample columns of the sheet's patients, their patient IDs, the samples left out).
    Samples of no patient follow ``rna.extra_samples``; several samples of one patient
    are an error unless ``rna.duplicate_samples`` is ``aggregate``."""
    known = set(patients)
    owner = to_patients(list(df.columns), pattern)
    if pattern is not None:
        renamed = sum(o != c for o, c in zip(owner, df.columns, strict=True))
        notes.append(f"sample IDs mapped to patient IDs by rna.patient_from_sample "
                     f"{source.patient_from_sample!r} ({renamed} of {len(owner)} renamed)")
    extra = [c for c, o in zip(df.columns, owner, strict=True) if o not in known]
    if extra:
        no_rna = sorted(known - set(owner), key=list(patients).index)
        message = (f"{path}: {len(extra)} RNA samples match no patient of the clinical sheet "
                   f"(first: {first(extra)}); patients without RNA: {first(no_rna) or 'none'}."
                   f"{id_advice(extra, patients)}")
        if source.extra_samples == "error":
            raise InputError(message + " The sheet defines the cohort: remove these samples, "
                             "or set rna.extra_samples: drop to leave them out")
        log.warning("%s They are left out (rna.extra_samples: drop).", message)
        notes.append(f"{len(extra)} RNA samples of no patient of the clinical sheet left out "
                     f"({first(extra)})")
    keep = np.array([o in known for o in owner], dtype=bool)
    if not keep.any():
        raise InputError(f"{path}: none of its {len(owner)} samples is a patient of the clinical "
                         f"sheet (first: {first(df.columns)}; patients: {first(patients)})."
                         f"{id_advice(list(df.columns), patients)}")
    df = df.loc[:, keep]
    owner = [o for o, k in zip(owner, keep, strict=True) if k]
    groups = pd.Series(list(df.columns)).groupby(owner, sort=False).agg(list)
    several = groups[groups.map(len) > 1]
    if len(several):
        patient, samples = several.index[0], several.iloc[0]
        more = (f" ({len(several) - 1} more patients have several samples: "
                f"{first(several.index[1:])})" if len(several) > 1 else "")
        if source.duplicate_samples == "error":
            raise InputError(
                f"{path}: patient {patient!r} has {len(samples)} RNA samples "
                f"({', '.join(map(repr, samples))}){more}. Keep one sample per patient in the "
                "table, or set rna.duplicate_samples: aggregate to combine them (counts summed; "
                "TPM/FPKM averaged on the log2(x + 1) scale; log2 and z-scores averaged)")
        notes.append(f"{len(several)} patients with several RNA samples combined "
                     f"(rna.duplicate_samples: aggregate), e.g. {patient}: {', '.join(samples)}")
    return df, owner, extra


def _aggregate(df: pd.DataFrame, owner: list[str], kind: str) -> pd.DataFrame:
    """Genes x patients: one column per patient, combining its samples by ``kind``."""
    if len(set(owner)) == len(owner):
        df.columns = owner
        return df
    grouped = df.T.groupby(pd.Index(owner, name="patient"), sort=False)
    if kind == "counts":
        return grouped.sum().T
    if kind in ("tpm", "fpkm"):
        return (np.exp2(np.log2(df.T + 1.0).groupby(pd.Index(owner), sort=False).mean()) - 1.0).T
    return grouped.mean().T


def read_expression(source: RnaSource, patients: Sequence[str]) -> Expression:
    """The table at ``source.path`` as the sheet's patients x symbols, checked; see the
    module docstring."""
    path = Path(source.path)
    notes: list[str] = []
    pattern = source.patient_pattern()
    if path.is_dir():
        from histodistill.rna.per_sample import read_sample_folder

        df = read_sample_folder(path, "counts" if source.kind == "auto" else source.kind,
                                source.value_column)
        notes.append(f"{df.shape[1] - ('gene_name' in df.columns)} per-sample files merged")
    else:
        df = read_table(path)
    df = _orient(df, patients, source.orientation, pattern, path, notes)
    df, symbols = _split_annotation(df, notes)
    df, owner, left_out = _select_samples(df, patients, source, pattern, path, notes)
    keep = ~_summary_rows(df, path, notes) & ~df.index.str.endswith("_PAR_Y")
    if df.index.str.endswith("_PAR_Y").any():
        notes.append(f"{int(df.index.str.endswith('_PAR_Y').sum())} _PAR_Y rows (Y copies of "
                     "pseudo-autosomal genes) dropped")
    df = df.loc[keep]
    symbols = symbols.loc[keep] if symbols is not None else None
    values = _numeric(df, path)
    kind = _detect_kind(values, df, path, notes) if source.kind == "auto" else source.kind
    _check_values(values, df, kind, path)
    df = pd.DataFrame(values, index=df.index, columns=df.columns)
    mapped = _gene_symbols(df.index, symbols, source.gene_map, path, notes)
    df.index = pd.Index(mapped.to_numpy(), name="gene")
    df = df.loc[df.index.notna()]
    df = _collapse(df, kind, path, notes)
    df = _aggregate(df, owner, kind)
    if kind == "counts":
        df = df.astype(np.int64)
    if kind == "zscore":
        notes.append("z-scores are used as given; they were standardised per gene by the data "
                     "provider over its whole cohort, a fit histodistill cannot move into folds")
    for note in notes:
        log.info("%s: %s", path, note)
    present = set(df.columns)
    missing = [p for p in patients if p not in present]
    if missing:
        log.warning("%d of %d patients have no RNA (%s); RNA-dependent models skip them",
                    len(missing), len(patients), first(missing))
    values = df.T.loc[[p for p in patients if p in present]]
    values.columns.name = "gene"
    return Expression(values=values, kind=kind, notes=notes, left_out=left_out)
