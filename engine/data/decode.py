"""Decode one image file into an 8-bit RGB array of a fixed square size, safely.

Pillow does the work. Grayscale, palette, CMYK, 16-bit and alpha images become 8-bit RGB (alpha is
composited on white, the colour of an empty slide); images above ``MAX_PIXELS`` are refused before they
are decoded (decompression bombs); anything Pillow cannot read raises DecodeError naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from engine.errors import DecodeError

MAX_PIXELS = 100_000_000  # whole-slide images go through engine.slides, not here
RESAMPLE = Image.Resampling.BILINEAR


def load_rgb(path: str | Path, max_pixels: int | None = None) -> Image.Image:
    """Open ``path`` as an 8-bit RGB PIL image, or raise DecodeError with the file's name."""
    path = Path(path)
    max_pixels = MAX_PIXELS if max_pixels is None else max_pixels
    try:
        with Image.open(path) as img:  # reads the header only; the size is checked before any decoding
            w, h = img.size
            if w * h > max_pixels or w <= 0 or h <= 0:
                raise DecodeError(f"{path}: {w}x{h} pixels is too large for an image tile (limit {max_pixels:,})")
            img.load()
            return to_rgb8(img)
    except DecodeError:
        raise
    except UnidentifiedImageError as exc:
        raise DecodeError(f"{path}: not an image Pillow can read (wrong extension or corrupt file)") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise DecodeError(f"{path}: refused as a possible decompression bomb ({exc})") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise DecodeError(f"{path}: cannot decode ({exc}); the file is probably truncated or corrupt") from exc


def to_rgb8(img: Image.Image) -> Image.Image:
    """Any Pillow mode -> 8-bit RGB."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        gray = np.clip(np.round(arr / top * 255.0), 0, 255).astype(np.uint8)
        return Image.fromarray(gray, "L").convert("RGB")
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
    if (nw, nh) != (w, h):
        img = img.resize((nw, nh), RESAMPLE, reducing_gap=3.0)
    left, top = (nw - size) // 2, (nh - size) // 2
    return img.crop((left, top, left + size, top + size))


def decode_image(path: str | Path, size: int) -> np.ndarray:
    """``path`` -> uint8 array (size, size, 3)."""
    return np.asarray(resize_center(load_rgb(path), size), dtype=np.uint8)
