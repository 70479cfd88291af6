"""Slide formats we can write here open through the same path, with the right mpp and levels."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import tifffile

from histodistill.wsi.segmentation import SegmentationParams, segment_slide
from histodistill.wsi.slide import open_slide


def _image(h=2048, w=3072):
    img = np.full((h, w, 3), 242, np.uint8)
    img[h // 4: 3 * h // 4, w // 4: 3 * w // 4] = (215, 140, 190)
    return img


def _write_aperio(path, img, mpp, compression="jpeg"):
    """An Aperio-style SVS: tiled pages (full resolution, then /4, /16), the vendor's
    ImageDescription with ``MPP`` on the first page, and a stripped thumbnail page.
    ``compression`` 33003 / 33005 are Aperio's JPEG 2000 codestreams (YCbCr / RGB); for 33003
    the tiles hold YCbCr, which OpenSlide converts back to RGB."""
    h, w = img.shape[:2]
    desc = (f"Aperio Image Library v12.0.15 \r\n{w}x{h} [0,0 {w}x{h}] (256x256) JPEG/RGB Q=70"
            f"|AppMag = 20|MPP = {mpp}|Filename = synthetic")

    def coded(a):
        if compression != 33003:
            return np.ascontiguousarray(a)
        return np.ascontiguousarray(cv2.cvtColor(a, cv2.COLOR_RGB2YCrCb)[..., [0, 2, 1]])

    with tifffile.TiffWriter(path) as tw:
        tw.write(coded(img), photometric="rgb", tile=(256, 256), compression=compression,
                 description=desc, metadata=None)
        tw.write(img[::16, ::16].copy(), photometric="rgb", compression="jpeg",
                 description=f"Aperio Image Library v12.0.15 \r\n{w}x{h} -> {w // 16}x{h // 16}",
                 metadata=None)  # the thumbnail (stripped: not a level)
        for f in (4, 16):
            tw.write(coded(img[::f, ::f]), photometric="rgb", tile=(256, 256),
                     compression=compression, metadata=None)


@pytest.mark.parametrize("compression", [33003, 33005])
def test_aperio_jpeg2000(tmp_path, compression):
    path = tmp_path / "s.svs"
    img = _image()
    _write_aperio(path, img, 0.2525, compression)
    slide, info = open_slide(path, "s")
    with slide:
        region = np.asarray(slide.read_region((800, 600), 0, (64, 64)).convert("RGB"))
        corner = np.asarray(slide.read_region((0, 0), 2, (16, 16)).convert("RGB"))
    assert info.vendor == "aperio" and len(info.level_dimensions) == 3
    assert np.abs(region.astype(int) - img[600:664, 800:864]).mean() < 4
    assert np.abs(corner.astype(int) - 242).mean() < 4


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


def _write_leica(path, img, mpp):
    """A Leica SCN: the ``scn`` XML (namespace 2010/10/01) on the first page maps images to
    TIFF pages. A 20 x 10 mm collection holds a macro image (its view is the whole collection)
    and the scanned region at a 2 mm, 1 mm offset, in 3 resolutions; sizes are in nm."""
    h, w = img.shape[:2]
    nm = mpp * 1000

    def image(name, pixels, view, objective):
        dims = "".join(f'<dimension sizeX="{x}" sizeY="{y}" r="{r}" ifd="{ifd}"/>'
                       for r, (x, y, ifd) in enumerate(pixels))
        return (f'<image name="{name}"><device model="Leica SCN400" version="1.5"/>'
                f'<pixels sizeX="{pixels[0][0]}" sizeY="{pixels[0][1]}">{dims}</pixels>'
                f'<view sizeX="{view[0]}" sizeY="{view[1]}" offsetX="{view[2]}" '
                f'offsetY="{view[3]}" spacingZ="NaN"/><scanSettings><objectiveSettings>'
                f"<objective>{objective}</objective></objectiveSettings><illuminationSettings>"
                "<illuminationSource>brightfield</illuminationSource></illuminationSettings>"
                "</scanSettings></image>")

    collection = (20_000_000, 10_000_000)
    xml = ('<?xml version="1.0" encoding="utf-8"?>'
           '<scn xmlns="http://www.leica-microsystems.com/scn/2010/10/01">'
           f'<collection name="synthetic" sizeX="{collection[0]}" sizeY="{collection[1]}">'
           + image("macro", [(400, 200, 3)], (*collection, 0, 0), 0.5)
           + image("main", [(w // f, h // f, i) for i, f in enumerate((1, 4, 16))],
                   (int(w * nm), int(h * nm), 2_000_000, 1_000_000), 20)
           + "</collection></scn>")
    with tifffile.TiffWriter(path) as tw:
        for i, f in enumerate((1, 4, 16)):
            tw.write(np.ascontiguousarray(img[::f, ::f]), photometric="rgb", tile=(256, 256),
                     compression="jpeg", description=xml if i == 0 else None, metadata=None,
                     resolution=(1e4 / mpp / f, 1e4 / mpp / f), resolutionunit="CENTIMETER")
        tw.write(np.full((200, 400, 3), 200, np.uint8), photometric="rgb", tile=(256, 256),
                 compression="jpeg", metadata=None)


def _write_ventana(path, img, mpp):
    """A Ventana BIF: BigTIFF, the ``iScan`` XMP (ScanRes = mpp) on the label page, a
    thumbnail, then tiled levels described ``level=N mag=M``."""
    xmp = (f'<?xml version="1.0" encoding="utf-8"?><iScan Magnification="40" ScanRes="{mpp}" '
           'Z-layers="1"/>').encode()
    with tifffile.TiffWriter(path, bigtiff=True) as tw:
        tw.write(np.full((200, 400, 3), 200, np.uint8), photometric="rgb",
                 description="Label Image", metadata=None, extratags=[(700, 1, None, xmp, True)])
        tw.write(np.ascontiguousarray(img[::16, ::16]), photometric="rgb",
                 description="Thumbnail", metadata=None)
        for level, f in enumerate((1, 4, 16)):
            tw.write(np.ascontiguousarray(img[::f, ::f]), photometric="rgb", tile=(256, 256),
                     compression="jpeg", description=f"level={level} mag={40 / f:g} quality=95",
                     metadata=None)


def _write_ndpi(path, img, mpp):
    """A Hamamatsu NDPI: one single-strip JPEG per pyramid directory (full resolution, /4,
    /16), resolution in pixels per cm, and the NDPI tags OpenSlide requires: 65420 (format
    flag), 65421 (source lens, scaled per level), 65422-65424 (x, y, z offsets). Without the
    restart-marker tag 65426 each level is one JPEG, as in the lower levels of real files."""
    with tifffile.TiffWriter(path) as tw:
        for f in (1, 4, 16):
            level = np.ascontiguousarray(img[::f, ::f])
            res = 1e4 / (mpp * f)
            tw.write(level, photometric="rgb", compression="jpeg", rowsperstrip=level.shape[0],
                     resolution=(res, res), resolutionunit="CENTIMETER", metadata=None,
                     extratags=[(271, "s", 0, "Hamamatsu", True), (65420, "I", 1, 1, True),
                                (65421, "f", 1, 20.0 / f, True), (65422, "i", 1, 0, True),
                                (65423, "i", 1, 0, True), (65424, "i", 1, 0, True)])


def test_hamamatsu_ndpi(tmp_path):
    """OpenSlide adds JPEG-scaled levels to each NDPI directory, so the level list is longer;
    the /4 and /16 directories are among them and the best level is still chosen by mpp."""
    path = tmp_path / "s.ndpi"
    img = _image()
    _write_ndpi(path, img, 0.2525)
    slide, info = open_slide(path, "s")
    with slide:
        region = np.asarray(slide.read_region((800, 600), 0, (64, 64)).convert("RGB"))
    assert info.vendor == "hamamatsu" and info.mpp == pytest.approx(0.2525, rel=1e-6)
    assert info.mpp_source == "metadata" and info.dimensions == (3072, 2048)
    assert {4.0, 16.0} <= {round(d, 3) for d in info.level_downsamples}
    assert np.abs(region.astype(int) - img[600:664, 800:864]).mean() < 4  # JPEG-close
    summary = segment_slide(path, "s", tmp_path / "s.geojson", tmp_path / "s.png",
                            SegmentationParams())
    assert summary["tissue_mm2"] == pytest.approx(1536 * 1024 * 0.2525**2 / 1e6, rel=0.05)


def _write_mirax(path, img, mpp, image_px=256, exponents=(0, 2, 2)):
    """A 3DHISTECH MIRAX slide: ``s.mrxs`` beside a folder ``s/`` holding ``Slidedat.ini``,
    ``Index.dat`` and one data file. Level 0 is a grid of 256 px JPEG camera images without
    overlap (so no position buffer); each further level concatenates 2^e x 2^e images of the
    one before into one 256 px image (exponents 0, 2, 2: downsamples 1, 4, 16). The index
    holds, per level, a record pointing to one data page of (image index, offset, length,
    file) items, as OpenSlide's reader expects."""
    import struct

    folder = path.with_suffix("")
    folder.mkdir()
    slide_id = "0123456789abcdef0123456789abcdef"
    h, w = img.shape[:2]
    nx, ny = -(-w // image_px), -(-h // image_px)
    data = bytearray(b"01.02" + slide_id.encode() + b"000" + bytes(256))
    levels, concat = [], 1
    for e in exponents:
        concat <<= e
        items = []
        for y in range(0, ny, concat):
            for x in range(0, nx, concat):
                block = np.full((image_px * concat, image_px * concat, 3), 255, np.uint8)
                part = img[y * image_px:(y + concat) * image_px,
                           x * image_px:(x + concat) * image_px]
                block[:part.shape[0], :part.shape[1]] = part
                small = cv2.resize(block, (image_px, image_px), interpolation=cv2.INTER_AREA)
                jpeg = cv2.imencode(".jpg", cv2.cvtColor(small, cv2.COLOR_RGB2BGR))[1].tobytes()
                items.append((y * nx + x, len(data), len(jpeg), 0))
                data += jpeg
        levels.append(items)
    (folder / "Data0000.dat").write_bytes(bytes(data))
    head = b"01.02" + slide_id.encode()
    index = bytearray(head + bytes(8 + 4 * len(levels)))  # roots, then one pointer per level
    table = len(head) + 8
    for i, items in enumerate(levels):
        record = len(index)
        struct.pack_into("<i", index, table + 4 * i, record)
        index += struct.pack("<iiii", 0, record + 8, len(items), 0)  # record, then its page
        for item in items:
            index += struct.pack("<iiii", *item)
    struct.pack_into("<ii", index, len(head), table, len(index))
    index += struct.pack("<i", 0)  # an empty non-hierarchical table
    (folder / "Index.dat").write_bytes(bytes(index))
    ini = ["[GENERAL]", "SLIDE_VERSION=1.9", f"SLIDE_ID={slide_id}", f"IMAGENUMBER_X={nx}",
           f"IMAGENUMBER_Y={ny}", "OBJECTIVE_MAGNIFICATION=20", "[HIERARCHICAL]",
           "HIER_COUNT=1", "NONHIER_COUNT=0", "INDEXFILE=Index.dat",
           "HIER_0_NAME=Slide zoom level", f"HIER_0_COUNT={len(levels)}"]
    ini += [f"HIER_0_VAL_{i}_SECTION=LAYER_0_LEVEL_{i}_SECTION" for i in range(len(levels))]
    ini += ["[DATAFILE]", "FILE_COUNT=1", "FILE_0=Data0000.dat"]
    concat = 1
    for i, e in enumerate(exponents):
        concat <<= e
        ini += [f"[LAYER_0_LEVEL_{i}_SECTION]", f"IMAGE_CONCAT_FACTOR={e}", "OVERLAP_X=0",
                "OVERLAP_Y=0", f"MICROMETER_PER_PIXEL_X={mpp * concat}",
                f"MICROMETER_PER_PIXEL_Y={mpp * concat}", "IMAGE_FORMAT=JPEG",
                "IMAGE_FILL_COLOR_BGR=16777215", f"DIGITIZER_WIDTH={image_px}",
                f"DIGITIZER_HEIGHT={image_px}"]
    (folder / "Slidedat.ini").write_text("\n".join(ini) + "\n")
    path.write_bytes(b"")  # the .mrxs names the slide; OpenSlide reads the folder


def _write_dicom(folder, img, mpp):
    """A DICOM WSI series (VL Whole Slide Microscopy Image, TILED_FULL, JPEG baseline frames),
    one file per pyramid level (full resolution, /4, /16) sharing study, series and frame of
    reference; the pixel spacing (mm) is in the shared functional groups. Returns level 0."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit, generate_uid

    folder.mkdir()
    study, series, frame_of_reference = generate_uid(), generate_uid(), generate_uid()
    for level, f in enumerate((1, 4, 16)):
        pixels = np.ascontiguousarray(img[::f, ::f])
        h, w = pixels.shape[:2]
        frames = []
        for y in range(0, h, 256):
            for x in range(0, w, 256):
                tile = np.full((256, 256, 3), 255, np.uint8)
                part = pixels[y:y + 256, x:x + 256]
                tile[:part.shape[0], :part.shape[1]] = part
                frames.append(cv2.imencode(".jpg", cv2.cvtColor(tile, cv2.COLOR_RGB2BGR))[1]
                              .tobytes())
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.77.1.6"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
        ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.FrameOfReferenceUID = frame_of_reference
        ds.Modality, ds.PatientID, ds.InstanceNumber = "SM", "synthetic", level + 1
        ds.ImageType = (["ORIGINAL", "PRIMARY", "VOLUME", "NONE"] if level == 0 else
                        ["DERIVED", "PRIMARY", "VOLUME", "RESAMPLED"])
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 3, "YBR_FULL_422"
        ds.PlanarConfiguration, ds.Rows, ds.Columns = 0, 256, 256
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        ds.NumberOfFrames, ds.DimensionOrganizationType = len(frames), "TILED_FULL"
        ds.TotalPixelMatrixColumns, ds.TotalPixelMatrixRows = w, h
        ds.ImagedVolumeWidth, ds.ImagedVolumeHeight = w * mpp * f / 1000, h * mpp * f / 1000
        measures = Dataset()
        measures.PixelSpacing = [mpp * f / 1000] * 2  # mm, row then column spacing
        shared = Dataset()
        shared.PixelMeasuresSequence = [measures]
        ds.SharedFunctionalGroupsSequence = [shared]
        ds.PixelData = encapsulate(frames)
        ds["PixelData"].is_undefined_length = True
        ds.save_as(folder / f"level{level}.dcm", enforce_file_format=True)
    return folder / "level0.dcm"


def test_dicom_wsi_series(tmp_path):
    """OpenSlide reads the whole series from one of its files (the sheet gives one path)."""
    pytest.importorskip("pydicom", reason="pydicom (a test extra) writes the DICOM files")
    img = _image()
    path = _write_dicom(tmp_path / "series", img, 0.2525)
    slide, info = open_slide(path, "s")
    with slide:
        region = np.asarray(slide.read_region((800, 600), 0, (64, 64)).convert("RGB"))
    assert info.vendor == "dicom" and info.mpp == pytest.approx(0.2525, rel=1e-6)
    assert info.level_downsamples == pytest.approx([1.0, 4.0, 16.0])
    assert np.abs(region.astype(int) - img[600:664, 800:864]).mean() < 4
    summary = segment_slide(path, "s", tmp_path / "s.geojson", tmp_path / "s.png",
                            SegmentationParams())
    assert summary["tissue_mm2"] == pytest.approx(1536 * 1024 * 0.2525**2 / 1e6, rel=0.05)


@pytest.mark.parametrize("writer, suffix, vendor", [
    (_write_aperio, ".svs", "aperio"), (_write_philips, ".tiff", "philips"),
    (_write_leica, ".scn", "leica"), (_write_ventana, ".bif", "ventana"),
    (_write_mirax, ".mrxs", "mirax")])
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


def test_leica_tiles_lie_in_the_scanned_region_of_the_collection(tmp_path):
    """A Leica slide's level 0 is the whole collection (the glass); the scanned region sits at
    an offset inside it. Tissue and tiles must come out there, in level-0 coordinates."""
    import h5py
    import openslide

    from histodistill.wsi.tiling import TilingParams, tile_slide

    path = tmp_path / "s.scn"
    _write_leica(path, _image(), 0.5)
    props = openslide.OpenSlide(str(path)).properties
    x0, y0 = int(props["openslide.bounds-x"]), int(props["openslide.bounds-y"])
    assert (x0, y0) == (4000, 2000)  # 2 mm, 1 mm at 0.5 um/px
    segment_slide(path, "s", tmp_path / "s.geojson", tmp_path / "s.png", SegmentationParams())
    n = tile_slide(path, "s", tmp_path / "s.geojson", tmp_path / "s.h5",
                   TilingParams(patch_um=128.0, patch_px=256))
    with h5py.File(tmp_path / "s.h5") as f:
        coords = f["coords"][:]
    # the painted rectangle: x in [768, 2304), y in [512, 1536) of the 3072 x 2048 region
    assert n == len(coords) > 0
    assert coords[:, 0].min() >= x0 + 768 - 256 and coords[:, 0].max() < x0 + 2304
    assert coords[:, 1].min() >= y0 + 512 - 256 and coords[:, 1].max() < y0 + 1536
