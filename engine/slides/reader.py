"""Open a whole-slide image with OpenSlide and describe it: size, pyramid levels, microns per pixel.

OpenSlide (``openslide-python`` with the ``openslide-bin`` wheel, so nothing is installed system-wide)
reads the vendor formats (.svs, .ndpi, .mrxs, .scn, ...), DICOM whole-slide images (a folder of .dcm
instances: open any one of them, or the folder) and tiled pyramidal TIFFs; a plain PNG/JPEG or untiled TIFF
opens as a one-level slide through OpenSlide's image fallback (Pillow), which decodes it whole, so such a
picture is limited to Pillow's bomb limit (about 179 million pixels) and a bigger one is refused with the
advice to convert it to a tiled pyramid. A pyramid is never read whole: callers ask for regions of a level
(``read_region``) or a thumbnail.

A damaged file often opens (only its header is read) and fails later, when a tile is decoded ("Bogus marker
length" from a broken JPEG tile). ``open_slide`` therefore returns a ``Slide``: the OpenSlide object behind
one place that turns every error OpenSlide or Pillow raises while reading (``read_region``, thumbnails, so the
tissue mask too) into a ``SlideError`` naming the file, for every caller: prediction, the robustness map and
the viewer. A read that could not fit in memory (a region or thumbnail level above ``MAX_READ_PIXELS``,
e.g. from a damaged header claiming a huge image) is refused before it starts.
"""

from __future__ import annotations

import functools
import logging
import re
import struct
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from engine.core.errors import SlideError

log = logging.getLogger(__name__)

MAX_READ_PIXELS = 1 << 27  # one read (a region, a thumbnail's level): 134 Mpx, 512 MB as RGBA
MAX_TILE_PIXELS = 1 << 26  # one TIFF tile OpenSlide decodes whole (real ones: 240-2048 px a side)
DICOM_HEADER_BYTES = 1 << 16  # where a DICOM file's Rows and Columns are looked for
TIFF_MAGIC = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")
PLAIN_IMAGE_WARN = 64_000_000  # a plain picture this large is decoded whole on the first read: say so
# what Pillow and OpenSlide's Python layer raise on a bad file (OpenSlideError is added when openslide is imported):
# OSError ("image file is truncated", UnidentifiedImageError), SyntaxError ("broken PNG file"), KeyError and
# IndexError from damaged tags, struct/zlib errors from damaged chunks; a TypeError is a bug and is not hidden
DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError, ValueError, SyntaxError, EOFError, KeyError, IndexError, struct.error, zlib.error, MemoryError,
)  # fmt: skip


@dataclass(frozen=True)
class SlideInfo:
    path: str
    vendor: str
    dimensions: tuple[int, int]  # width, height at level 0
    level_dimensions: tuple[tuple[int, int], ...]
    level_downsamples: tuple[float, ...]
    mpp: tuple[float, float] | None  # microns per pixel at level 0 (x, y), None when the file does not say
    objective_power: float | None
    properties: dict[str, str] = field(default_factory=dict, repr=False)
    scale: object | None = None  # engine.slides.scale.Scale, set by predict_slide: the scale tiles were cut at

    @property
    def level_count(self) -> int:
        return len(self.level_dimensions)

    @property
    def plain(self) -> bool:
        """A plain picture (Pillow decodes it whole), not a tiled slide."""
        return self.vendor == "image"


class Slide:
    """An open slide (``openslide.OpenSlide`` or ``ImageSlide``) whose reads raise SlideError naming the file,
    never a decoder's own error. A context manager, like the object it wraps."""

    def __init__(self, slide, path: str | Path) -> None:
        self._slide = slide
        self.path = Path(path)
        self.dimensions = tuple(slide.dimensions)
        self.level_count = slide.level_count
        self.level_dimensions = tuple(tuple(d) for d in slide.level_dimensions)
        self.level_downsamples = tuple(float(d) for d in slide.level_downsamples)
        self.properties = dict(slide.properties)

    def read_region(self, location: tuple[int, int], level: int, size: tuple[int, int]):
        """An RGBA PIL image of ``size`` at ``level`` from level-0 ``location`` (OpenSlide's ``read_region``)."""
        _check_read(self.path, size, "region")
        return self._guard(self._slide.read_region, location, level, size)

    def get_thumbnail(self, size: tuple[int, int]):
        """An RGB thumbnail within ``size``, as openslide-python makes it (the level nearest the downsample read
        whole, over the slide's background colour) but read through ``read_region``, so every pixel this class
        hands out passes the same checks; refused when that level is too large to read whole."""
        from PIL import Image

        downsample = max(d / s for d, s in zip(self.dimensions, size))
        level = self.get_best_level_for_downsample(downsample)
        _check_read(self.path, self.level_dimensions[level], "overview")
        region = self.read_region((0, 0), level, self.level_dimensions[level])
        background = "#" + self.properties.get("openslide.background-color", "ffffff")
        thumb = Image.new("RGB", region.size, background)
        thumb.paste(region, None, region)
        return self._guard(_shrink, thumb, size)

    def get_best_level_for_downsample(self, downsample: float) -> int:
        return self._guard(self._slide.get_best_level_for_downsample, downsample)

    def _guard(self, read, *args):
        try:
            return read(*args)
        except _read_errors() as exc:
            raise damaged(self.path, exc) from exc

    def close(self) -> None:
        self._slide.close()

    def __enter__(self) -> Slide:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _shrink(image, size: tuple[int, int]):
    from PIL import Image

    image.thumbnail(size, Image.Resampling.LANCZOS)  # openslide-python's choice
    return image


@functools.cache
def _read_errors() -> tuple[type[BaseException], ...]:
    import openslide

    return (openslide.OpenSlideError, *DECODE_ERRORS)


def damaged(path: Path, exc: BaseException) -> SlideError:
    """The one-line error for a file that fails while it is decoded."""
    library = "OpenSlide" if type(exc).__module__.startswith("openslide") else "Pillow"
    if isinstance(exc, MemoryError):
        return SlideError(
            f"{path}: out of memory while decoding it; close other programs or convert it to a tiled pyramid"
        )
    return SlideError(
        f"{path} is damaged or truncated ({library}: {_one_line(exc)}); re-export or re-scan it"
    )  # fmt: skip


def _one_line(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _check_read(path: Path, size, what: str) -> None:
    w, h = (int(v) for v in size)
    if w * h > MAX_READ_PIXELS:
        raise SlideError(
            f"{path}: one {what} read would be {w:,} x {h:,} px, too large to hold in memory (the file has no "
            "smaller pyramid level, or its header is damaged); convert it to a tiled pyramidal TIFF, e.g. "
            "`vips tiffsave IN OUT.tif --tile --pyramid --compression jpeg`"
        )


def _resolve(path: Path) -> Path:
    """The file to open: ``path``, or for a folder of DICOM instances one of its .dcm files."""
    if path.is_dir():
        dcm = sorted(p for p in path.iterdir() if p.suffix.lower() == ".dcm" and p.is_file())
        if not dcm:
            raise SlideError(f"{path}: a folder with no .dcm files; choose a slide file or a DICOM slide's folder")
        return dcm[0]
    if not path.is_file():
        raise SlideError(f"{path}: no such slide file; choose a .svs, .ndpi, .mrxs, .dcm, .tiff, .png or .jpg file")
    return path


def open_slide(path: str | Path) -> Slide:
    """A ``Slide`` over ``openslide.open_slide`` (ImageSlide for plain images); SlideError naming the file
    otherwise: not a format OpenSlide or Pillow reads, damaged, or too large a plain picture."""
    path = _resolve(Path(path))
    _check_tiff(path)
    _check_dicom(path)
    try:
        import openslide
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise SlideError(
            "reading whole slides needs openslide-python and openslide-bin; install them with pip"
        ) from exc
    from PIL import Image

    try:
        with warnings.catch_warnings():  # Pillow warns of each damaged TIFF tag: the user gets one line
            warnings.simplefilter("ignore")
            slide = Slide(openslide.open_slide(str(path)), path)
    except Image.DecompressionBombError as exc:
        raise SlideError(
            f"{path}: a plain picture this large ({exc}) would be decoded whole into memory; convert it to a tiled "
            "pyramidal TIFF, e.g. `vips tiffsave IN OUT.tif --tile --pyramid --compression jpeg`, and open that"
        ) from exc
    except Image.UnidentifiedImageError as exc:
        raise SlideError(
            f"{path}: not a slide format OpenSlide or Pillow can read; convert it to a tiled pyramidal TIFF or "
            "check that the file is complete"
        ) from exc
    except _read_errors() as exc:
        raise damaged(path, exc) from exc
    _warn_if_plain_and_large(slide)
    return slide


def _check_tiff(path: Path) -> None:
    """A TIFF-like file's structure checked with tifffile before OpenSlide sees it: OpenSlide allocates a whole
    tile from the header's tile size and aborts the process when that fails (a damaged TileWidth asked for
    400 GB), so a header tifffile cannot parse, or a tile over MAX_TILE_PIXELS, is refused here."""
    with open(path, "rb") as fh:
        if fh.read(4) not in TIFF_MAGIC:
            return
    import tifffile

    quiet = logging.getLogger("tifffile")
    hush = _Hush()  # tifffile logs each damaged tag it skips: the user gets one line, below
    quiet.addFilter(hush)
    try:
        with tifffile.TiffFile(path) as tf:  # len() stops at a circular IFD chain, iterating would not
            pages = [tf.pages[i] for i in range(len(tf.pages))]
            tiles = [(int(p.tilewidth), int(p.tilelength)) for p in pages if p.is_tiled]
    except Exception as exc:  # tifffile's errors on a damaged file are of many types
        raise SlideError(
            f"{path} is damaged or truncated (tifffile: {_one_line(exc)}); re-export or re-scan it"
        ) from exc
    finally:
        quiet.removeFilter(hush)
    big = [(w, h) for w, h in tiles if w * h > MAX_TILE_PIXELS]
    if big:
        raise SlideError(
            f"{path} is damaged or truncated (its header gives tiles of {big[0][0]:,} x {big[0][1]:,} px, larger than "
            "any scanner writes); re-export or re-scan it"
        )


def _check_dicom(path: Path) -> None:
    """A DICOM file's frame size (Rows x Columns, explicit VR little endian: the only encoding OpenSlide reads)
    checked before OpenSlide allocates a frame from it; hand-written (a byte search of the header) rather than
    making pydicom a dependency for two numbers. Conservative: any Rows or Columns element found counts."""
    with open(path, "rb") as fh:
        head = fh.read(DICOM_HEADER_BYTES)
    if head[128:132] != b"DICM":
        return
    sizes = {}
    for name, tag in (("rows", b"\x28\x00\x10\x00US\x02\x00"), ("columns", b"\x28\x00\x11\x00US\x02\x00")):
        found = (head[m.end() : m.end() + 2] for m in re.finditer(re.escape(tag), head))
        sizes[name] = max((int.from_bytes(v, "little") for v in found), default=0)
    if sizes["rows"] * sizes["columns"] > MAX_TILE_PIXELS:
        raise SlideError(
            f"{path} is damaged or truncated (its header gives frames of {sizes['columns']:,} x {sizes['rows']:,} "
            "px, larger than any scanner writes); re-export or re-scan it"
        )


class _Hush(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


def _warn_if_plain_and_large(slide: Slide) -> None:
    w, h = slide.dimensions
    if not slide.properties.get("openslide.vendor") and w * h > PLAIN_IMAGE_WARN:
        log.warning(
            "%s is a plain %d x %d picture: it is decoded whole (about %d MB of memory) before the first tile; "
            "a tiled pyramidal TIFF opens at once",
            slide.path.name, w, h, w * h * 4 // 1_000_000,
        )  # fmt: skip


def slide_info(slide, path: str | Path = "") -> SlideInfo:
    """What the user is shown about a slide: size, levels, mpp and objective power when the file has them."""
    props = dict(slide.properties)
    return SlideInfo(
        path=str(path),
        vendor=props.get("openslide.vendor", "image"),
        dimensions=tuple(slide.dimensions),
        level_dimensions=tuple(tuple(d) for d in slide.level_dimensions),
        level_downsamples=tuple(float(d) for d in slide.level_downsamples),
        mpp=_mpp(props),
        objective_power=_float(props.get("openslide.objective-power")),
        properties=props,
    )


def _mpp(props: dict[str, str]) -> tuple[float, float] | None:
    x, y = _float(props.get("openslide.mpp-x")), _float(props.get("openslide.mpp-y"))
    if x and y and x > 0 and y > 0:
        return x, y
    return None


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except ValueError:
        return None
