"""Imported first by every rule script, before numpy or torch load:

* cap every thread pool (OpenMP, OpenBLAS, MKL) at the job's ``threads``, so that jobs
  running side by side do not each spin up a pool per core;
* put workflow/ first on sys.path, so the script imports this checkout's histodistill
  package (in any conda env, installed or not).

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
if _WORKFLOW not in sys.path:
    sys.path.insert(0, _WORKFLOW)
