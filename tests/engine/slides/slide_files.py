"""Writers of small whole-slide files with the structure labs' files have, for tests (no public fixtures):

* ``write_svs``: an Aperio SVS, a tiled pyramidal TIFF of JPEG tiles with Aperio's ImageDescription
  (``Aperio Image Library ...|AppMag = 20|MPP = 0.499``), which OpenSlide reads as vendor "aperio";
* ``write_ndpi``: a Hamamatsu NDPI, one JPEG per level with NDPI's private tags (vendor "hamamatsu");
* ``write_dicom``: a DICOM WSI, a folder with one VL Whole Slide Microscopy instance per level (pydicom),
  uncompressed RGB frames TILED_FULL (vendor "dicom", OpenSlide >= 4);
* ``write_tiff``: a generic tiled pyramidal TIFF (vendor "generic-tiff"), resolution in any unit: 72 per inch
  is the print resolution that reads as 352.8 µm/px;
* ``write_plain``: a PNG / JPEG / untiled TIFF (OpenSlide's Pillow fallback, vendor "image");
* ``damage_jpeg_tiles``: a DQT marker length of 0 in every JPEG tile of one level, so the file opens and fails
  when a tile is decoded, with libjpeg's "Bogus marker length".

JPEG tiles are encoded with Pillow and written by tifffile as raw tiles (padded), their Compression and byte
counts set afterwards: tifffile's own JPEG encoder needs imagecodecs, which HistoGuard does not otherwise use.
"""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

JPEG = 7  # the TIFF Compression tag's value for JPEG
NDPI_FORMAT_FLAG, NDPI_SOURCELENS, NDPI_FOCAL_PLANE = 65420, 65421, 65424
PLACEHOLDER_TAG = 65000  # written in place of NDPI_FORMAT_FLAG (tifffile would read the file as NDPI)
WSI_CLASS = "1.2.840.10008.5.1.4.1.1.77.1.6"  # VL Whole Slide Microscopy Image Storage


def tissue_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """(height, width, 3) uint8: bright grey glass around a pink (eosin) block in the middle half."""
    rng = np.random.default_rng(seed)
    image = np.clip(rng.normal(236, 3, (height, width, 3)), 0, 255).astype(np.uint8)
    rows, cols = slice(height // 4, 3 * height // 4), slice(width // 4, 3 * width // 4)
    block = image[rows, cols].shape[:2]
    image[rows, cols] = np.clip(rng.normal((205, 120, 185), 8, (*block, 3)), 0, 255).astype(np.uint8)
    return image


def levels_of(image: np.ndarray, levels: int) -> list[np.ndarray]:
    return [image[:: 2**k, :: 2**k] for k in range(levels)]


def _jpeg(array: np.ndarray, quality: int = 90, rgb: bool = True) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="JPEG", quality=quality, keep_rgb=rgb)
    return buffer.getvalue()


def _jpeg_tiles(image: np.ndarray, tile: int, lengths: list[int]):
    """Each tile's JPEG, padded to the raw tile's size (so tifffile writes it as it is); ``lengths`` gets their
    real lengths, for the TileByteCounts set afterwards."""
    h, w = image.shape[:2]
    for y in range(0, h, tile):
        for x in range(0, w, tile):
            padded = np.zeros((tile, tile, 3), np.uint8)
            part = image[y : y + tile, x : x + tile]
            padded[: part.shape[0], : part.shape[1]] = part
            data = _jpeg(padded)
            assert len(data) <= padded.size, "a JPEG tile larger than the raw tile: use larger tiles"
            lengths.append(len(data))
            yield np.frombuffer(data.ljust(padded.size, b"\0"), np.uint8).reshape(padded.shape)


def write_svs(path, image: np.ndarray, levels: int = 3, mpp: float = 0.499, app_mag: int = 20, tile: int = 128) -> Path:
    """An Aperio SVS of ``image`` (level 0) and ``levels - 1`` halvings, JPEG tiles of ``tile`` px."""
    h, w = image.shape[:2]
    head = f"Aperio Image Library v12.0.15\r\n{w}x{h} [0,0 {w}x{h}] ({tile}x{tile}) JPEG/RGB Q=90"
    lengths: list[list[int]] = []
    with tifffile.TiffWriter(path) as tw:
        for k, level in enumerate(levels_of(image, levels)):
            text = (
                f"{head}|AppMag = {app_mag}|MPP = {mpp}" if k == 0 else f"{head} -> {level.shape[1]}x{level.shape[0]}"
            )
            lengths.append([])
            tw.write(
                _jpeg_tiles(level, tile, lengths[-1]), shape=level.shape, dtype="uint8", tile=(tile, tile),
                photometric="rgb", description=text, metadata=None,
            )  # fmt: skip
    with tifffile.TiffFile(path, mode="r+b") as tf:
        for page, counts in zip(tf.pages, lengths):
            page.tags["Compression"].overwrite(JPEG)
            page.tags["TileByteCounts"].overwrite(counts)
    return Path(path)


def write_ndpi(path, image: np.ndarray, levels: int = 2, mpp: float = 0.46, lens: float = 20.0) -> Path:
    """A Hamamatsu NDPI: each level one JPEG strip, with the source lens and focal plane tags."""
    path, staging = Path(path), Path(path).with_suffix(".tif")  # tifffile reads a *.ndpi with NDPI's quirks
    sizes = []
    with tifffile.TiffWriter(staging) as tw:
        for k, level in enumerate(levels_of(image, levels)):
            data = _jpeg(level, rgb=False)
            sizes.append(len(data))
            assert len(data) <= level.size, "a JPEG larger than the raw level: use a larger or smoother image"
            raw = np.frombuffer(data.ljust(level.size, b"\0"), np.uint8)
            tags = [(PLACEHOLDER_TAG, "I", 1, 1, True), (NDPI_SOURCELENS, "f", 1, lens, True)]
            tw.write(
                raw.reshape(level.shape), photometric="rgb", rowsperstrip=level.shape[0], metadata=None,
                resolution=(1e4 / (mpp * 2**k),) * 2, resolutionunit="CENTIMETER",
                extratags=[*tags, (NDPI_FOCAL_PLANE, "i", 1, 0, True)],
            )  # fmt: skip
    with tifffile.TiffFile(staging, mode="r+b") as tf:
        for page, n in zip(tf.pages, sizes):
            page.tags["Compression"].overwrite(JPEG)
            page.tags["StripByteCounts"].overwrite((n,))
        flags = [page.tags[PLACEHOLDER_TAG].offset for page in tf.pages]
    with open(staging, "r+b") as fh:
        for offset in flags:
            fh.seek(offset)
            fh.write(struct.pack("<H", NDPI_FORMAT_FLAG))
    os.replace(staging, path)
    return path


def write_tiff(
    path, image: np.ndarray, levels: int = 3, resolution: float = 2e4, unit: str = "CENTIMETER", tile: int = 64
) -> Path:
    """A generic tiled pyramidal TIFF (zlib); ``resolution`` pixels per ``unit`` at level 0 (2e4/cm: 0.5 µm/px)."""
    opts = {"tile": (tile, tile), "photometric": "rgb", "compression": "zlib", "resolutionunit": unit}
    with tifffile.TiffWriter(path) as tw:
        for k, level in enumerate(levels_of(image, levels)):
            extra = {"subfiletype": 1} if k else {}
            tw.write(level, resolution=(resolution / 2**k,) * 2, metadata=None, **opts, **extra)
    return Path(path)


def write_plain(path, image: np.ndarray) -> Path:
    """A plain picture in the format its suffix names (.png, .jpg, .tif: an untiled TIFF)."""
    Image.fromarray(image).save(path)
    return Path(path)


def write_dicom(
    folder, image: np.ndarray, levels: int = 2, mpp: float = 0.25, objective: float = 40.0, tile: int = 64
) -> Path:
    """A DICOM WSI folder: ``level<k>.dcm`` per level, one series; returns the folder."""
    from pydicom.uid import generate_uid

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    uids = {
        "StudyInstanceUID": generate_uid(),
        "SeriesInstanceUID": generate_uid(),
        "FrameOfReferenceUID": generate_uid(),
    }
    for k, level in enumerate(levels_of(image, levels)):
        _dicom_level(folder / f"level{k}.dcm", level, tile, mpp * 2**k, objective, uids, k)
    return folder


def _dicom_level(path: Path, image: np.ndarray, tile: int, mpp: float, objective: float, uids: dict, k: int) -> None:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    h, w = image.shape[:2]
    down, across = -(-h // tile), -(-w // tile)
    frames = np.zeros((down, across, tile, tile, 3), np.uint8)
    for r in range(down):
        for c in range(across):
            part = image[r * tile : (r + 1) * tile, c * tile : (c + 1) * tile]
            frames[r, c, : part.shape[0], : part.shape[1]] = part
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = WSI_CLASS, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = WSI_CLASS, meta.MediaStorageSOPInstanceUID
    for key, value in uids.items():
        setattr(ds, key, value)
    ds.Modality, ds.PatientName, ds.PatientID, ds.InstanceNumber = "SM", "Synthetic^Slide", "TEST", k + 1
    ds.ImageType = (
        ["ORIGINAL", "PRIMARY", "VOLUME", "NONE"] if k == 0 else ["DERIVED", "PRIMARY", "VOLUME", "RESAMPLED"]
    )
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.Rows = ds.Columns = tile
    ds.NumberOfFrames = down * across
    ds.TotalPixelMatrixColumns, ds.TotalPixelMatrixRows, ds.TotalPixelMatrixFocalPlanes = w, h, 1
    ds.DimensionOrganizationType = "TILED_FULL"
    measures = Dataset()
    measures.PixelSpacing, measures.SliceThickness = [mpp / 1000, mpp / 1000], 0.001  # mm
    shared = Dataset()
    shared.PixelMeasuresSequence = Sequence([measures])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    optics = Dataset()
    optics.ObjectiveLensPower, optics.OpticalPathIdentifier = objective, "1"
    ds.OpticalPathSequence = Sequence([optics])
    ds.PixelData = frames.tobytes()
    ds.save_as(path, enforce_file_format=True)


def damage_jpeg_tiles(path, page: int = 0) -> Path:
    """Set the DQT marker's length to 0 in every JPEG tile of ``page``: libjpeg stops with "Bogus marker length"
    when such a tile is decoded; the file still opens (only its header is read then)."""
    with tifffile.TiffFile(path) as tf:
        offsets, counts = tf.pages[page].dataoffsets, tf.pages[page].databytecounts
    with open(path, "r+b") as fh:
        for offset, count in zip(offsets, counts):
            fh.seek(offset)
            at = fh.read(count).find(b"\xff\xdb")
            fh.seek(offset + at + 2)
            fh.write(b"\x00\x00")
    return Path(path)
