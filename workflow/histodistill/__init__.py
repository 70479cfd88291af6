"""histodistill: histology-only risk models trained with RNA as privileged information.

The package is the tested core of the Snakemake workflow: every rule's script makes one call
into it. It never imports snakemake and does no I/O at import time.
"""

__version__ = "0.1.0"
