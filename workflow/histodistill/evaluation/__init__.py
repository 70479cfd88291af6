"""Metrics and plots from out-of-fold predictions."""
