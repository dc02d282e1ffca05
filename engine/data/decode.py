"""Decode one image file into an 8-bit RGB array of a fixed square size, safely, whatever the file holds.

Pillow does the work. Grayscale, palette, CMYK, 16-bit and alpha images become 8-bit RGB (alpha is
composited on white, the colour of an empty slide). Files are untrusted, so every failure becomes a
DecodeError whose message names the file and says what to do (tests/engine/test_fuzz_inputs.py checks it
on random and damaged files):

- only the formats slide tiles come in are opened (``FORMATS``): Pillow's other plugins (EPS runs
  Ghostscript, WebP allocates before checking, dozens of rarely used parsers) never see a user's file;
- the size in the header is checked before any pixel is decoded, so a decompression bomb (a small file
  that claims 100,000 x 100,000 pixels) is refused without allocating it;
- Pillow raises many exception types on malformed input (OSError, SyntaxError, ValueError, struct.error,
  IndexError, ...): all of them are caught around Pillow's calls, chained, and re-raised as DecodeError.
"""

from __future__ import annotations

import stat
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, UnidentifiedImageError

from engine.core.errors import DecodeError

# Pillow's own bomb limit (Image.MAX_IMAGE_PIXELS), so Pillow never warns about an image we accept; image
# tiles are far smaller, whole slides must be tiled before training or prediction
MAX_PIXELS = 89_478_485
RESAMPLE = Image.Resampling.BILINEAR
# JPEG includes MPO (the JPEG of many cameras). Not WebP: its decoder allocates the canvas the header claims
# when the file is opened, before our size check can run
FORMATS = ("PNG", "JPEG", "TIFF", "BMP", "GIF")
FORMAT_NAMES = "PNG, JPEG, TIFF, BMP or GIF"
# what Pillow's plugins raise on malformed input; MemoryError: a valid header whose pixels do not fit;
# Warning: under `python -W error` Pillow's warnings about corrupt metadata arrive as exceptions
PILLOW_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    TypeError,
    IndexError,
    KeyError,
    struct.error,
    ZeroDivisionError,
    OverflowError,
    MemoryError,
    Warning,
)
FIX_CORRUPT = "re-export or copy the file again, or remove it"


def load_rgb(path: str | Path, max_pixels: int | None = None) -> Image.Image:
    """Open ``path`` as an 8-bit RGB PIL image, or raise DecodeError naming the file and what to do."""
    path = Path(path)
    max_pixels = MAX_PIXELS if max_pixels is None else max_pixels
    with _open_file(path) as fp:
        try:
            return _decode(path, fp, max_pixels)
        except DecodeError:
            raise
        except UnidentifiedImageError as exc:
            what = f"not an image HistoGuard can read ({FORMAT_NAMES}), or the file is corrupt"
            raise _error(path, what, f"convert it to PNG, {FIX_CORRUPT}") from exc
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:  # the warning: -W error
            what = f"refused as a possible decompression bomb ({_short(exc)})"
            raise _error(path, what, "crop or downscale it to tiles") from exc
        except MemoryError as exc:
            raise _error(path, "not enough memory to decode it", "downscale the image or close other programs") from exc
        except PILLOW_ERRORS as exc:
            what = f"cannot decode ({type(exc).__name__}: {_short(exc)}); the file is probably truncated or corrupt"
            raise _error(path, what, FIX_CORRUPT) from exc


def _open_file(path: Path) -> BinaryIO:
    """``path`` opened for reading, or DecodeError saying why not, before Pillow sees it.

    Only regular files are opened: reading a named pipe or a device (``/dev/stdin``) could wait forever.
    Pillow reads from this file object and never memory-maps the file, so a file cut short while it is
    being read gives an error rather than a crash (SIGBUS).
    """
    try:
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            raise _error(path, "is a folder, not an image file", "give image files, or add the folder instead")
        if not stat.S_ISREG(mode):
            raise _error(path, "is not a regular file (a pipe or a device?)", "give image files")
        return open(path, "rb")  # noqa: SIM115 (returned to the caller's with-statement)
    except FileNotFoundError as exc:
        raise _error(path, "file not found", "check the path (was the file moved or deleted?)") from exc
    except PermissionError as exc:
        raise _error(path, "permission denied", "check that you may read the file") from exc
    except (OSError, ValueError) as exc:  # a name too long for the file system, a NUL in the name, a disk error
        reason = getattr(exc, "strerror", None) or _short(exc)
        raise _error(path, f"cannot be opened ({reason})", "check the path") from exc


def _decode(path: Path, fp: BinaryIO, max_pixels: int) -> Image.Image:
    with Image.open(fp, formats=FORMATS) as img:  # reads the header only
        _check_size(path, img.size, max_pixels)  # before any pixel is decoded
        img.load()
        return _convert(path, img)


def _check_size(path: Path, size: tuple[int, int], max_pixels: int) -> None:
    w, h = size
    if w <= 0 or h <= 0:
        raise _error(path, f"the header says {w}x{h} pixels (an empty image)", FIX_CORRUPT)
    if w * h > max_pixels:
        raise _error(
            path,
            f"{w}x{h} pixels is too large for an image tile (limit {max_pixels:,}; a decompression bomb?)",
            "crop or downscale it to tiles",
        )


def _convert(path: Path, img: Image.Image) -> Image.Image:
    try:
        return to_rgb8(img)
    except ValueError as exc:  # a mode Pillow cannot convert (e.g. "La")
        what = f"cannot convert pixel mode {img.mode} to RGB ({_short(exc)})"
        raise _error(path, what, "save it as an RGB PNG") from exc


def _error(path: Path, what: str, todo: str) -> DecodeError:
    """The one message format: '<file>: <what is wrong>; <what to do>'."""
    return DecodeError(f"{shown_path(path)}: {what}; {todo}")


def shown_path(path: str | Path) -> str:
    """``path`` as one line of text that can be printed, shown by Qt and written as UTF-8.

    A file name that is not valid UTF-8 (bytes from another encoding) reaches Python with lone surrogates, and
    a name may hold control characters (a newline, a terminal escape): both are written as escapes ("\\udce9",
    "\\x0a"), so the message naming the file stays one line and cannot itself fail to print. Every other name
    is unchanged.
    """
    return str(path).translate(_CONTROL_ESCAPES).encode("utf-8", "backslashreplace").decode("utf-8")


_CONTROL_ESCAPES = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))} | {
    c: f"\\u{c:04x}"
    for c in (0x2028, 0x2029)  # the Unicode line and paragraph separators
}


def _short(exc: BaseException) -> str:
    """Pillow's message on one line and not too long (the CLI prints it on one line)."""
    text = shown_path(" ".join(str(exc).split()) or type(exc).__name__)
    return text if len(text) <= 160 else text[:157] + "..."


def to_rgb8(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.nan_to_num(np.array(img, dtype=np.float32), copy=False, nan=0.0)  # F may hold NaN / inf
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        np.clip(arr, 0.0, top, out=arr)  # in place: a large 16-bit image is not copied again and again
        np.multiply(arr, np.float32(255.0 / top), out=arr)
        return Image.fromarray(np.round(arr, out=arr).astype(np.uint8), "L").convert("RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def resize_center(img: Image.Image, size: int) -> Image.Image:
    """Resize the shorter side to ``size`` and crop the centre square (no distortion of nuclei)."""
    w, h = img.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    left, top = (nw - size) // 2, (nh - size) // 2
    if nw * nh > max(w * h, 4 * size * size):
        # enlarging a long thin image (1 x 60,000 px at 224 would be 224 x 13 million px, GBs): resample only
        # the source region that becomes the centre square; same pixels up to one grey level. Ordinary images
        # keep the resize-then-crop below, so their pixels (and the decode cache) stay as they were.
        box = (left * w / nw, top * h / nh, (left + size) * w / nw, (top + size) * h / nh)
        return img.resize((size, size), RESAMPLE, box=box)
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), RESAMPLE, reducing_gap=3.0)
    return img.crop((left, top, left + size, top + size))


def decode_image(path: str | Path, size: int, max_pixels: int | None = None) -> np.ndarray:
    """``path`` -> uint8 array (size, size, 3), or DecodeError naming the file."""
    img = load_rgb(path, max_pixels)
    try:
        return np.asarray(resize_center(img, size), dtype=np.uint8)
    except MemoryError as exc:
        raise _error(Path(path), f"not enough memory to resize it to {size}x{size}", "downscale the image") from exc
