"""Patch feature extraction with timm encoders from local weight files."""
