"""Why OpenSlide could not open a file, told from the file itself, with advice that fits.

OpenSlide says only "unsupported format" or "cannot read". The cases a user meets are told
apart by what the bytes say:

* an **empty** file (a failed copy);
* a **truncated TIFF** (SVS, NDPI, generic TIFF ...): its own directory points at image data,
  or at a further directory, past the end of the file - re-copy it and compare the sizes;
* a **DICOM** instance (``DICM`` at byte 128) that OpenSlide cannot place in a whole-slide
  series: a label, overview or non-WSI object, or a series whose other files are missing;
* a **TIFF that is complete but not a whole-slide image** OpenSlide knows (a strip-based or
  untiled TIFF): convert it to a tiled pyramid;
* a **plain image or archive** (JPEG, PNG, ZIP): not a slide;
* a **MIRAX** ``.mrxs`` without its data folder beside it;
* anything else: the format is not one OpenSlide reads.
"""

from __future__ import annotations

import struct
from pathlib import Path

SUPPORTED = ("Aperio SVS, generic tiled TIFF, Hamamatsu NDPI/VMS, MIRAX, Philips TIFF, DICOM "
             "WSI, Leica SCN, Ventana BIF, Sakura SVSlide, Zeiss CZI")
_OFFSET_TAGS = {273: 279, 324: 325}  # StripOffsets -> StripByteCounts, TileOffsets -> ...
_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4,
          16: 8, 17: 8, 18: 8}
_MAX_IFDS = 10_000


class _Truncated(Exception):
    def __init__(self, needed: int) -> None:
        self.needed = needed


def _tiff_extent(path: Path, size: int) -> int | None:
    """The largest byte offset a TIFF's directories refer to (IFDs and image data), or None
    when the file is not a TIFF. Raises _Truncated when a reference lies past ``size``."""
    with path.open("rb") as fh:
        head = fh.read(16)
        if head[:2] not in (b"II", b"MM") or len(head) < 8:
            return None
        order = "<" if head[:2] == b"II" else ">"
        magic = struct.unpack(order + "H", head[2:4])[0]
        if magic == 42:
            big, ifd = False, struct.unpack(order + "I", head[4:8])[0]
        elif magic == 43 and len(head) >= 16:
            big, ifd = True, struct.unpack(order + "Q", head[8:16])[0]
        else:
            return None
        count_fmt, entry_size, value_size, next_fmt = (
            ("Q", 20, 8, "Q") if big else ("H", 12, 4, "I"))
        extent, seen = 0, set()

        def read_at(offset: int, n: int) -> bytes:
            if offset + n > size:
                raise _Truncated(offset + n)
            fh.seek(offset)
            return fh.read(n)

        while ifd and ifd not in seen and len(seen) < _MAX_IFDS:
            seen.add(ifd)
            n_size = 8 if big else 2
            n = struct.unpack(order + count_fmt, read_at(ifd, n_size))[0]
            raw = read_at(ifd + n_size, n * entry_size + (8 if big else 4))
            arrays: dict[int, list[int]] = {}
            for k in range(n):
                entry = raw[k * entry_size:(k + 1) * entry_size]
                tag, typ = struct.unpack(order + "HH", entry[:4])
                count = struct.unpack(order + ("Q" if big else "I"),
                                      entry[4:12 if big else 8])[0]
                item = _SIZES.get(typ, 1)
                payload = entry[12:20] if big else entry[8:12]
                if count * item > value_size:
                    offset = struct.unpack(order + ("Q" if big else "I"), payload)[0]
                    extent = max(extent, offset + count * item)
                    if tag in _OFFSET_TAGS or tag in _OFFSET_TAGS.values():
                        payload = read_at(offset, count * item)
                    elif offset + count * item > size:
                        raise _Truncated(offset + count * item)
                if tag in _OFFSET_TAGS or tag in _OFFSET_TAGS.values():
                    fmt = {2: "H", 4: "I", 8: "Q"}.get(item)
                    if fmt is not None:
                        arrays[tag] = list(struct.unpack(f"{order}{count}{fmt}",
                                                         payload[:count * item]))
            for offsets_tag, counts_tag in _OFFSET_TAGS.items():
                for offset, nbytes in zip(arrays.get(offsets_tag, []),
                                          arrays.get(counts_tag, []), strict=False):
                    if offset + nbytes > size:
                        raise _Truncated(offset + nbytes)
                    extent = max(extent, offset + nbytes)
            ifd = struct.unpack(order + next_fmt, raw[n * entry_size:])[0]
        return extent if seen else 0


def diagnose(path: str | Path) -> str:
    """The reason and advice for a file OpenSlide cannot open (see the module docstring)."""
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        return "the file is empty (0 bytes): the copy or download failed - copy it again"
    with path.open("rb") as fh:
        head = fh.read(132)
    if path.suffix.lower() == ".mrxs" and not path.with_suffix("").is_dir():
        return (f"a MIRAX .mrxs needs its data folder {path.with_suffix('').name}/ (Slidedat.ini "
                "and the .dat files) beside it; copy the folder with the file")
    if head[128:132] == b"DICM":
        return ("a DICOM file that OpenSlide cannot place in a whole-slide series: give the "
                "path of an image instance (VL Whole Slide Microscopy, not a label or overview) "
                "of a series whose files are all in one folder; a series with files missing "
                "cannot be read")
    try:
        extent = _tiff_extent(path, size)
    except _Truncated as cut:
        return (f"the file is truncated: it is {size:,} bytes, but its TIFF directory refers to "
                f"data up to byte {cut.needed:,}; the copy is incomplete - copy it again and "
                "compare its size with the original")
    except (struct.error, OSError) as exc:
        return f"its TIFF structure is damaged ({exc}); re-export or re-copy it"
    if extent == 0:
        return ("a TIFF header with no image directory: the file is damaged or was not fully "
                "written - re-export or re-copy it")
    if extent is not None:
        return ("a complete TIFF, but not a whole-slide image OpenSlide recognises (no tiled "
                "pyramid of a known scanner); convert it to a tiled pyramidal TIFF (e.g. "
                "vips tiffsave --tile --pyramid --compression jpeg) or export it from the "
                f"scanner software as SVS or DICOM. Readable formats: {SUPPORTED}")
    for magic, what in ((b"\xff\xd8\xff", "a JPEG image"), (b"\x89PNG", "a PNG image"),
                        (b"PK\x03\x04", "a ZIP archive - unpack it first")):
        if head.startswith(magic):
            return f"{what}, not a whole-slide image. Readable formats: {SUPPORTED}"
    return (f"format not recognised by OpenSlide (the file starts {head[:8]!r}). Readable "
            f"formats: {SUPPORTED}")
