"""Slide formats we can write here open through the same path, with the right mpp and levels."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from histodistill.wsi.segmentation import SegmentationParams, segment_slide
from histodistill.wsi.slide import open_slide


def _image(h=2048, w=3072):
    img = np.full((h, w, 3), 242, np.uint8)
    img[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = (215, 140, 190)
    return img


def _write_aperio(path, img, mpp):
    """An Aperio-style SVS: tiled JPEG pages (full resolution, then /4, /16), the vendor's
    ImageDescription with ``MPP`` on the first page, and a stripped thumbnail page."""
    h, w = img.shape[:2]
    desc = (f"Aperio Image Library v12.0.15 \r\n{w}x{h} [0,0 {w}x{h}] (256x256) JPEG/RGB Q=70"
            f"|AppMag = 20|MPP = {mpp}|Filename = synthetic")
    with tifffile.TiffWriter(path) as tw:
        tw.write(img, photometric="rgb", tile=(256, 256), compression="jpeg",
                 description=desc, metadata=None)
        tw.write(img[::16, ::16].copy(), photometric="rgb", compression="jpeg",
                 description=f"Aperio Image Library v12.0.15 \r\n{w}x{h} -> {w // 16}x{h // 16}",
                 metadata=None)  # the thumbnail (stripped: not a level)
        for f in (4, 16):
            tw.write(np.ascontiguousarray(img[::f, ::f]), photometric="rgb", tile=(256, 256),
                     compression="jpeg", metadata=None)


def _write_philips(path, img, mpp):
    """A Philips TIFF export: Software "Philips...", XML DPUfsImport description with
    DICOM_PIXEL_SPACING in mm per level, reduced levels as subfiletype=1 pages."""
    def attr(name, typ, value):
        return f'<Attribute Name="{name}" PMSVR="{typ}">{value}</Attribute>'

    def spacing(mm):
        return attr("DICOM_PIXEL_SPACING", "IDoubleArray", f"&quot;{mm}&quot; &quot;{mm}&quot;")

    reps = "".join(
        '<DataObject ObjectType="PixelDataRepresentation">'
        f'{attr("PIIM_PIXEL_DATA_REPRESENTATION_NUMBER", "IUInt16", i)}'
        f"{spacing(mpp / 1000 * 4**i)}</DataObject>" for i in range(3))
    xml = ('<?xml version="1.0" encoding="UTF-8" ?><DataObject ObjectType="DPUfsImport">'
           '<Attribute Name="PIM_DP_SCANNED_IMAGES" PMSVR="IDataObjectArray"><Array>'
           '<DataObject ObjectType="DPScannedImage">' + attr("PIM_DP_IMAGE_TYPE", "IString", "WSI")
           + '<Attribute Name="PIIM_PIXEL_DATA_REPRESENTATION_SEQUENCE" PMSVR="IDataObjectArray">'
           f"<Array>{reps}</Array></Attribute>{spacing(mpp / 1000)}"
           "</DataObject></Array></Attribute></DataObject>")
    with tifffile.TiffWriter(path) as tw:
        tw.write(img, photometric="rgb", tile=(256, 256), compression="jpeg", description=xml,
                 software="Philips DP v1.0", metadata=None)
        for f in (4, 16):
            tw.write(np.ascontiguousarray(img[::f, ::f]), photometric="rgb", tile=(256, 256),
                     compression="jpeg", software="Philips DP v1.0", subfiletype=1,
                     metadata=None)


@pytest.mark.parametrize("writer, suffix, vendor", [
    (_write_aperio, ".svs", "aperio"), (_write_philips, ".tiff", "philips")])
def test_vendor_formats_give_mpp_levels_and_tissue(tmp_path, writer, suffix, vendor):
    path = tmp_path / f"s{suffix}"
    writer(path, _image(), 0.2525)
    slide, info = open_slide(path, "s")
    slide.close()
    assert info.vendor == vendor and info.mpp == pytest.approx(0.2525)
    assert info.mpp_source == "metadata" and len(info.level_dimensions) == 3
    assert info.level_downsamples[1] == pytest.approx(4, rel=1e-3)
    summary = segment_slide(path, "s", tmp_path / "s.geojson", tmp_path / "s.png",
                            SegmentationParams())
    # the painted rectangle is 1536 x 1024 px at 0.2525 um/px
    assert summary["tissue_mm2"] == pytest.approx(1536 * 1024 * 0.2525**2 / 1e6, rel=0.05)


def test_generic_tiff_without_resolution_needs_the_sheet(tmp_path):
    path = tmp_path / "g.tiff"
    tifffile.imwrite(path, _image(1024, 1024), photometric="rgb", tile=(256, 256),
                     compression="jpeg", metadata=None)
    with pytest.raises(Exception, match="'g'.*no microns-per-pixel.*'mpp' column"):
        open_slide(path, "g")
    slide, info = open_slide(path, "g", mpp_override=0.5)
    slide.close()
    assert info.mpp == 0.5 and info.mpp_source == "sheet"
