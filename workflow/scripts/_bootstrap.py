"""Put workflow/ first on sys.path so rule scripts import this checkout's histodistill package
(in any conda env, installed or not). Snakemake adds this folder to sys.path for scripts."""

import sys
from pathlib import Path

_WORKFLOW = str(Path(__file__).resolve().parents[1])
if _WORKFLOW not in sys.path:
    sys.path.insert(0, _WORKFLOW)
