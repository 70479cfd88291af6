"""Imported first by every rule script, before numpy or torch load:

* cap every thread pool (OpenMP, OpenBLAS, MKL) at the job's ``threads``, so that jobs
  running side by side do not each spin up a pool per core;
* put this checkout's workflow/ first on sys.path, always, so the script imports this
  checkout's histodistill package (in any conda env, installed or not) - even when an
  editable install of another checkout, or Snakemake's own path additions, put another copy
  (or this one, further back) on the path first.

Snakemake runs a rule script as ``__main__`` with a global ``snakemake`` object, and adds this
folder to sys.path.
"""

import os
import sys
from pathlib import Path

_job = getattr(sys.modules["__main__"], "snakemake", None)
if _job is not None:
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = str(max(1, int(_job.threads)))

_WORKFLOW = str(Path(__file__).resolve().parents[1])
sys.path[:] = [_WORKFLOW, *(p for p in sys.path if p != _WORKFLOW)]
_loaded = sys.modules.get("histodistill")
if _loaded is not None and not str(Path(_loaded.__file__).resolve()).startswith(_WORKFLOW + os.sep):
    raise ImportError(f"histodistill was imported from {_loaded.__file__} before this "
                      f"checkout's {_WORKFLOW} could be put first; import _bootstrap before "
                      "anything else in a rule script")
