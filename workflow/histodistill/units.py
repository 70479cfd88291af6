"""Typed physical and pixel units, so a micrometre is never mistaken for a pixel."""

from typing import NewType

Microns = NewType("Microns", float)
"""A length in micrometres."""

MicronsPerPixel = NewType("MicronsPerPixel", float)
"""Resolution: micrometres per pixel (mpp)."""

Level0Px = NewType("Level0Px", int)
"""A length or coordinate in pixels of the slide's full-resolution level 0."""
