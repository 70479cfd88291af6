"""A cohort's feature index: one row per slide's feature file, written after all of them.

Cohort-level steps (training, attention, summaries, report) depend on this one file instead of
on every slide's h5. For Snakemake that turns ``models x folds x slides`` dependency edges into
``slides + models x folds``: a dry run of three 1,000-slide cohorts went from 79 s to 50 s
(``benchmarks/dag_dryrun.py``). The index is rewritten whenever any feature file changes,
so everything downstream still re-runs exactly when a slide's features do; its ``sha256``
column makes the change visible in the file itself (Snakemake compares checksums, so an index
rewritten with the same bytes would not re-run anything).

``sha256`` is the ``features_sha256`` that extraction computed while writing (features as
float32 then coords as int64, row-major), so rebuilding the index of a 1,000-slide cohort
after one slide changed reads 1,000 attributes, not every feature file in full. Files without
it (failed slides, files from before it existed) are hashed whole.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from histodistill.errors import InputError
from histodistill.io import write_tsv
from histodistill.provenance import file_sha256
from histodistill.wsi.status import FAILED, OK

COLUMNS = ["slide", "path", "status", "reason", "n_patches", "dim", "extractor", "sha256"]


def _row(path: Path) -> dict[str, object]:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            feats = f["features"]
            return {"slide": path.stem, "path": str(path),
                    "status": str(f.attrs.get("status", OK)),
                    "reason": str(f.attrs.get("reason", "")),
                    "n_patches": int(feats.shape[0]),
                    "dim": int(feats.shape[1]) if feats.ndim == 2 else 0,
                    "extractor": str(f.attrs.get("extractor", "")),
                    "sha256": str(f.attrs["features_sha256"]) if "features_sha256" in f.attrs
                    else file_sha256(path)}
    except (OSError, KeyError) as exc:
        raise InputError(f"feature file {path}: cannot be read as a features h5 ({exc}); "
                         "delete it and re-run so that the slide is extracted again") from exc


def index_features(feature_h5s: list[str], out: str | Path) -> pd.DataFrame:
    """Index every feature file (sorted by slide); the slides must share one extractor."""
    rows = [_row(Path(p)) for p in feature_h5s]
    index = pd.DataFrame(rows, columns=COLUMNS).sort_values("slide", kind="stable")
    dup = index["slide"][index["slide"].duplicated()]
    if len(dup):
        raise InputError(f"feature index {out}: slide {dup.iloc[0]!r} has two feature files")
    ok = index[index["status"] != FAILED]
    if ok["extractor"].nunique() > 1 or ok["dim"].nunique() > 1:
        raise InputError(f"feature index {out}: the feature files come from different "
                         f"extractors {sorted(ok['extractor'].unique())} / dimensions "
                         f"{sorted(ok['dim'].unique())}; delete the stale files and re-run")
    write_tsv(out, index)
    return index


def feature_paths(index_tsv: str | Path) -> list[str]:
    """The feature files listed in an index, in its (slide) order; each must exist."""
    index = pd.read_csv(index_tsv, sep="\t", dtype={"slide": str, "path": str},
                        keep_default_na=False)
    missing = [p for p in index["path"] if not Path(p).is_file()]
    if missing:
        raise InputError(f"feature index {index_tsv}: {len(missing)} listed files are missing, "
                         f"e.g. {missing[0]}; re-run the workflow to rebuild them")
    return list(index["path"])
