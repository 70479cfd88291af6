"""Risk models: baselines and RNA->WSI distilled students (see ../shared/docs/METHODS.md)."""
