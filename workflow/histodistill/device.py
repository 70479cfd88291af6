"""Which torch device a step runs on."""

from __future__ import annotations

import torch

from histodistill.errors import HistodistillError


def resolve_device(requested: str, setting: str = "features.device") -> torch.device:
    """'auto' -> CUDA when available, else CPU; 'cuda' without a GPU is an error naming the
    config ``setting``."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise HistodistillError(f"{setting} is 'cuda' but no CUDA GPU is visible to this "
                                "job; use device: auto (falls back to CPU) or request a GPU")
    return torch.device(requested)
