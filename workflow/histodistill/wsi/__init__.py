"""Whole-slide images: opening, tissue segmentation, tiling, writing synthetic pyramids."""
