"""The cohort's sheets (TSV): which slides belong to which patient, and the outcomes.

``samples.tsv``  one row per slide: ``patient``, ``slide``, ``path`` (relative paths are
                 resolved against the sheet's folder), optional ``mpp`` (um/px, overrides the
                 slide's metadata)
``clinical.tsv`` one row per patient: ``patient``, ``time`` (> 0), ``event`` (1 = event,
                 0 = censored), optional binary endpoints (0/1) and covariates

Both are checked before any job starts (common.smk) and again by every step that reads them;
each error names the file, the row (as a 1-based line number) and what to do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from histodistill.errors import InputError

ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _read_tsv(path: str | Path, what: str, required: list[str]) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} sheet {path} does not exist; check the cohort's entry in the "
                         "config")
    df = pd.read_csv(path, sep="\t", dtype={c: str for c in ("patient", "slide", "path")},
                     comment=None)
    df.columns = [c.strip() for c in df.columns]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {missing}; a {what} sheet needs "
                         f"{required} (tab-separated, header on the first line)")
    for col in ("patient", "slide"):
        if col not in df.columns:
            continue
        empty = df[col].isna()
        if empty.any():
            raise InputError(f"{path}, line {int(np.argmax(empty)) + 2}: empty {col!r}")
        bad = ~df[col].str.match(ID_PATTERN)
        if bad.any():
            i = int(np.argmax(bad))
            raise InputError(f"{path}, line {i + 2}: {col} {df[col].iloc[i]!r} may only use "
                             "letters, digits, '.', '_' and '-' (it becomes a file name)")
    return df


def _duplicates(path: Path, df: pd.DataFrame, col: str) -> None:
    dup = df[col].duplicated(keep=False)
    if dup.any():
        lines = (np.flatnonzero(dup) + 2).tolist()
        raise InputError(f"{path}: {col} IDs must be unique; repeated: "
                         f"{sorted(set(df.loc[dup, col]))[:5]} (lines {lines[:10]})")


def read_clinical(path: str | Path) -> pd.DataFrame:
    """Patients (index) with ``time`` (float > 0), ``event`` (0/1) and any other columns."""
    path = Path(path)
    df = _read_tsv(path, "clinical", ["patient", "time", "event"])
    _duplicates(path, df, "patient")
    for col in ("time", "event"):
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna()
        if bad.any():
            i = int(np.argmax(bad))
            raise InputError(f"{path}, line {i + 2} (patient {df['patient'].iloc[i]}): {col} "
                             f"{df[col].iloc[i]!r} is not a number")
        df[col] = values
    bad_time = ~(df["time"] > 0)
    if bad_time.any():
        i = int(np.argmax(bad_time))
        raise InputError(f"{path}, line {i + 2} (patient {df['patient'].iloc[i]}): time must be "
                         f"> 0, got {df['time'].iloc[i]}")
    bad_event = ~df["event"].isin([0, 1])
    if bad_event.any():
        i = int(np.argmax(bad_event))
        raise InputError(f"{path}, line {i + 2} (patient {df['patient'].iloc[i]}): event must be "
                         f"1 (event) or 0 (censored), got {df['event'].iloc[i]}")
    df["event"] = df["event"].astype(int)
    return df.set_index("patient")


@dataclass(frozen=True)
class Slide:
    slide_id: str
    patient: str
    path: Path
    mpp: float | None


def read_samples(path: str | Path, patients: list[str] | None = None,
                 check_files: bool = True) -> dict[str, Slide]:
    """Slides by ID. With ``patients``, every slide's patient must be among them."""
    path = Path(path)
    df = _read_tsv(path, "samples", ["patient", "slide", "path"])
    _duplicates(path, df, "slide")
    mpp = pd.to_numeric(df["mpp"], errors="coerce") if "mpp" in df else pd.Series(np.nan,
                                                                                  df.index)
    if "mpp" in df:
        bad = df["mpp"].notna() & mpp.isna()
        if bad.any():
            i = int(np.argmax(bad))
            raise InputError(f"{path}, line {i + 2}: mpp {df['mpp'].iloc[i]!r} is not a number")
    slides: dict[str, Slide] = {}
    missing = []
    for i, row in enumerate(df.itertuples(index=False)):
        slide_path = Path(row.path)
        if not slide_path.is_absolute():
            slide_path = path.parent / slide_path
        if check_files and not slide_path.exists():
            missing.append(f"line {i + 2}: slide {row.slide!r} file {slide_path}")
        value = float(mpp.iloc[i])
        slides[row.slide] = Slide(row.slide, row.patient, slide_path,
                                  None if np.isnan(value) else value)
    if missing:
        raise InputError(
            f"{path}: {len(missing)} slide files do not exist (relative paths are read from the "
            f"sheet's folder): {'; '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}. "
            "Snakemake plans every job from files that exist, so a missing file stops the run "
            "before any job starts, under wsi.on_slide_error: exclude too; fix the paths or "
            "remove those rows")
    if patients is not None:
        known = set(patients)
        orphans = sorted({s.patient for s in slides.values()} - known)
        if orphans:
            raise InputError(f"{path}: slides of patients missing from the clinical sheet: "
                             f"{orphans[:5]}{' ...' if len(orphans) > 5 else ''}; add them "
                             "there or remove their slides")
    return slides


def patient_slides(slides: dict[str, Slide]) -> dict[str, list[str]]:
    """Patient -> its slide IDs (sorted), the bag a patient-level model sees."""
    out: dict[str, list[str]] = {}
    for s in sorted(slides.values(), key=lambda s: s.slide_id):
        out.setdefault(s.patient, []).append(s.slide_id)
    return out
