"""What the fuzz tests share (issue 6): how many examples each runs (``PLAN``), hypothesis's settings, and the
property every bad input must meet: a file either decodes to a uint8 (size, size, 3) array or raises DecodeError
whose message names the file and says what to do; nothing else escapes, nothing hangs."""

from __future__ import annotations

import io
import re
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from PIL import Image

from engine.core.errors import DecodeError
from engine.data.decode import decode_image

PLAN = {  # examples per test; each test checks that it ran them all
    "random_bytes": 300,
    "valid_images": 200,
    "damaged_images": 600,
    "bombs": 100,
    "file_names": 150,
    "parser_text": 150,
    "parser_round_trip": 100,
    "parser_near_misses": 100,
    "magnification": 100,
}
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=timedelta(seconds=5),  # a hang fails the example; CI noise (tens of ms) does not
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)
pytestmark = [
    pytest.mark.timeout(120),
    pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning:PIL"),  # "Corrupt EXIF data", "Truncated File Read" ...
]
SMALL_LIMIT = 1 << 20  # damaged headers often claim millions of pixels: keep examples to milliseconds
ADVICE = re.compile(r"; (check|give|convert|re-export|crop|downscale|save)\b")
MODES = ("1", "L", "P", "P+transparency", "LA", "RGBA", "CMYK", "I;16", "I", "F", "RGB")
FORMATS = ("PNG", "JPEG", "TIFF", "BMP", "GIF", "WEBP")
REFUSED_FORMATS = ("WEBP",)  # decode.FORMATS leaves it out (its decoder allocates before any size check)
MAGIC = (b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"II*\x00", b"MM\x00*", b"BM", b"GIF89a", b"GIF87a")
OTHER_MAGIC = (b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"8BPS", b"%!PS-Adobe-3.0 EPSF", b"P6\n", b"\x00\x00\x01\x00", b"qoif")
COUNTS: dict[str, int] = {}


def fuzz(name: str) -> settings:
    return settings(FUZZ, max_examples=PLAN[name])


def _count(name: str) -> None:
    COUNTS[name] = COUNTS.get(name, 0) + 1


def _ran_all(name: str) -> None:
    assert COUNTS.get(name, 0) >= PLAN[name], f"{name}: ran {COUNTS.get(name, 0)} examples, planned {PLAN[name]}"


# --- the property ---------------------------------------------------------------------------------------------


def shown(name: str) -> str:
    """A file name as messages show it: control characters and line separators escaped, and the lone
    surrogates of names that are not UTF-8; everything else as it is."""
    out = ""
    for c in name:
        code = ord(c)
        if code < 0x20 or 0x7F <= code < 0xA0:
            c = f"\\x{code:02x}"
        elif c in "\u2028\u2029":
            c = f"\\u{code:04x}"
        out += c
    return out.encode("utf-8", "backslashreplace").decode("utf-8")


def assert_refusal(exc: DecodeError, path: Path) -> None:
    """The message names the file, says what to do, is one line and can be printed as UTF-8."""
    msg = str(exc)
    assert shown(path.name) in msg, msg
    assert ADVICE.search(msg), f"no advice in: {msg}"
    assert len(msg.splitlines()) == 1, msg
    msg.encode("utf-8")


def decode_or_refuse(path: Path, size: int, max_pixels: int | None = None) -> np.ndarray | None:
    """The array of a good file, None for a refused one; any other exception fails the test."""
    try:
        out = decode_image(path, size, max_pixels)
    except DecodeError as exc:
        assert_refusal(exc, path)
        return None
    assert out.dtype == np.uint8 and out.shape == (size, size, 3)
    return out


def _tiny(fmt: str) -> bytearray:
    buf = io.BytesIO()
    Image.new("RGB" if fmt in ("BMP", "WEBP") else "L", (4, 4), 128).save(buf, fmt)
    return bytearray(buf.getvalue())
