"""Bad image files (issue 6): every mode and format, random and damaged bytes, short files and decompression
bombs through the image loader. A file decodes or is refused with a message that names it and says what to do;
a bomb is refused before Pillow decodes a pixel. Deterministic in CI (derandomize, no example database); the
plan (``tests/engine/data/fuzzing.PLAN``) runs over 1,000 examples in all, on images of 1-16 px."""

from __future__ import annotations

import io
import struct
import time
import warnings
import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from engine.core.errors import DecodeError
from engine.data import decode as decode_mod
from engine.data.decode import MAX_PIXELS, decode_image, load_rgb, resize_center
from tests.engine.data.fuzzing import (  # noqa: F401 (pytestmark: the module's marks)
    COUNTS,
    FORMATS,
    FUZZ,
    MAGIC,
    MODES,
    OTHER_MAGIC,
    PLAN,
    REFUSED_FORMATS,
    SMALL_LIMIT,
    _count,
    _ran_all,
    _tiny,
    assert_refusal,
    decode_or_refuse,
    fuzz,
    pytestmark,
    shown,
)

# --- image files of every mode and format -----------------------------------------------------------------------


def make_image(mode: str, w: int, h: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    base = mode.split("+")[0]
    if base == "1":
        return Image.fromarray(rng.integers(0, 2, (h, w)).astype(bool))
    if base == "I;16":
        return Image.frombytes(base, (w, h), rng.integers(0, 65536, (h, w), dtype="<u2").tobytes())
    if base == "I":
        return Image.frombytes(base, (w, h), rng.integers(-(2**31), 2**31 - 1, (h, w), dtype=np.int32).tobytes())
    if base == "F":
        values = rng.normal(0, 500, (h, w)).astype(np.float32)
        values.flat[rng.integers(0, w * h)] = rng.choice([np.nan, np.inf, -np.inf, 70000.0])
        return Image.frombytes(base, (w, h), values.tobytes())
    bands = 1 if base == "P" else len(Image.new(base, (1, 1)).getbands())
    img = Image.frombytes(base, (w, h), rng.integers(0, 256, (h, w, bands), dtype=np.uint8).tobytes())
    if base == "P":
        img.putpalette(rng.integers(0, 256, 768, dtype=np.uint8).tolist())
    return img


def encode(mode: str, fmt: str, w: int, h: int, seed: int) -> bytes:
    buf = io.BytesIO()
    extra = {"transparency": 0} if mode.endswith("+transparency") else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        make_image(mode, w, h, seed).save(buf, fmt, **extra)
    return buf.getvalue()


def _savable() -> list[tuple[str, str]]:
    """The (mode, format) pairs this Pillow can write (JPEG has no 16-bit, BMP no CMYK ...)."""
    pairs = []
    for mode in MODES:
        for fmt in FORMATS:
            try:
                encode(mode, fmt, 3, 2, 0)
            except (OSError, KeyError, ValueError, TypeError):
                continue
            pairs.append((mode, fmt))
    return pairs


SAVABLE = _savable()
image_files = st.builds(
    lambda pair, w, h, seed: (pair, w, h, seed, encode(*pair, w, h, seed)),
    st.sampled_from(SAVABLE),
    st.integers(1, 16),
    st.integers(1, 16),
    st.integers(0, 2**16),
)


def test_every_odd_mode_can_be_written():
    assert {m for m, _ in SAVABLE} == set(MODES)
    assert {f for _, f in SAVABLE} >= {"PNG", "JPEG", "TIFF", "BMP", "GIF"}


def test_valid_images_of_every_mode_and_format_load(tmp_path):
    @fuzz("valid_images")
    @given(image_files, st.integers(1, 32))
    def check(image, size):
        _count("valid_images")
        (mode, fmt), w, h, seed, data = image
        path = tmp_path / f"valid.{fmt.lower()}"
        path.write_bytes(data)
        if fmt in REFUSED_FORMATS:
            with pytest.raises(DecodeError, match="convert it to PNG") as info:
                decode_image(path, size)
            assert_refusal(info.value, path)
            return
        out = decode_or_refuse(path, size)
        assert out is not None, f"a valid {mode} {fmt} of {w}x{h} was refused"
        assert load_rgb(path).mode == "RGB"
        if mode == "RGB" and fmt in ("PNG", "TIFF", "BMP") and w == h == size:  # lossless and not resized
            np.testing.assert_array_equal(out, np.asarray(make_image(mode, w, h, seed)))

    check()
    _ran_all("valid_images")


# --- random and damaged bytes -----------------------------------------------------------------------------------


def test_random_bytes_are_decoded_or_refused(tmp_path):
    @fuzz("random_bytes")
    @given(st.sampled_from(MAGIC + OTHER_MAGIC), st.binary(max_size=600), st.sampled_from([".png", ".jpg", ".tif"]))
    def check(magic, body, suffix):
        _count("random_bytes")
        path = tmp_path / f"random{suffix}"
        path.write_bytes(magic + body)
        out = decode_or_refuse(path, 8, SMALL_LIMIT)
        if magic in OTHER_MAGIC:  # formats HistoGuard does not open, however well made
            assert out is None

    check()
    _ran_all("random_bytes")


@st.composite
def damaged_files(draw) -> tuple[str, bytes]:
    """A valid small image cut short, or with a few bytes overwritten (often in its header)."""
    (mode, fmt), _, _, _, data = draw(image_files.filter(lambda image: image[0][1] not in REFUSED_FORMATS))
    n = len(data)
    if draw(st.booleans()):  # cut anywhere, but mostly past the signature (else it is just "not an image")
        return f"{mode} {fmt} cut", data[: draw(st.integers(min(12, n - 1), n - 1) | st.integers(0, n - 1))]
    damaged = bytearray(data)
    for _ in range(draw(st.integers(1, 6))):  # mostly in the header after the signature, where sizes are
        pos = draw(st.integers(min(8, n - 1), min(n, 80) - 1) | st.integers(0, n - 1))
        damaged[pos] = draw(st.integers(0, 255))
    return f"{mode} {fmt} flipped", bytes(damaged)


def test_truncated_and_corrupted_images_are_decoded_or_refused(tmp_path):
    @fuzz("damaged_images")
    @given(damaged_files(), st.integers(1, 24), st.booleans())
    def check(damaged, size, warnings_are_errors):
        _count("damaged_images")
        _, data = damaged
        path = tmp_path / "damaged.img"
        path.write_bytes(data)
        with warnings.catch_warnings():
            if warnings_are_errors:  # as under `python -W error`: Pillow's warnings arrive as exceptions
                warnings.simplefilter("error")
            decode_or_refuse(path, size, SMALL_LIMIT)

    check()
    _ran_all("damaged_images")


@pytest.mark.parametrize("size", [0, 1, 7])
def test_short_files_are_refused(tmp_path, size):
    path = tmp_path / f"short{size}.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n"[:size])
    assert decode_or_refuse(path, 8) is None


# --- decompression bombs ----------------------------------------------------------------------------------------


def _png(w: int, h: int) -> bytes:
    d = _tiny("PNG")
    d[16:24] = struct.pack(">II", w, h)
    d[29:33] = struct.pack(">I", zlib.crc32(bytes(d[12:29])))  # a correct CRC: Pillow checks it
    return bytes(d)


def _gif(w: int, h: int) -> bytes:
    d = _tiny("GIF")
    d[6:10] = struct.pack("<HH", w, h)  # the logical screen
    at = d.index(b"\x2c", 10)  # and the image descriptor
    d[at + 5 : at + 9] = struct.pack("<HH", w, h)
    return bytes(d)


def _bmp(w: int, h: int) -> bytes:
    d = _tiny("BMP")
    d[18:26] = struct.pack("<ii", w, h)
    return bytes(d)


def _jpeg(w: int, h: int) -> bytes:
    d = _tiny("JPEG")
    at = d.index(b"\xff\xc0")  # start of frame: height, then width
    d[at + 5 : at + 9] = struct.pack(">HH", h, w)
    return bytes(d)


def _tiff(w: int, h: int) -> bytes:
    d = _tiny("TIFF")
    ifd = struct.unpack_from("<I", d, 4)[0]
    for k in range(struct.unpack_from("<H", d, ifd)[0]):
        entry = ifd + 2 + 12 * k
        tag = struct.unpack_from("<H", d, entry)[0]
        if tag in (256, 257):  # ImageWidth, ImageLength as LONG
            struct.pack_into("<HHII", d, entry, tag, 4, 1, w if tag == 256 else h)
    return bytes(d)


def _webp(w: int, h: int) -> bytes:
    d = _tiny("WEBP")
    struct.pack_into("<HH", d, 26, w, h)  # the VP8 frame header (14-bit sizes)
    return bytes(d)


BOMB_FORMATS = {  # writer, largest side the format can state
    "png": (_png, 2**31 - 1),
    "tif": (_tiff, 2**32 - 1),
    "bmp": (_bmp, 2**31 - 1),
    "gif": (_gif, 65535),
    "jpg": (_jpeg, 65535),
    "webp": (_webp, 16383),
}


@st.composite
def bombs(draw) -> tuple[str, int, int, bytes]:
    """A small file whose header claims more than MAX_PIXELS pixels (up to what its format can state)."""
    ext = draw(st.sampled_from(sorted(BOMB_FORMATS)))
    writer, top = BOMB_FORMATS[ext]
    w = draw(st.integers(MAX_PIXELS // top + 1, top))
    h = draw(st.integers(MAX_PIXELS // w + 1, top))
    return ext, w, h, writer(w, h)


@pytest.fixture
def loads(monkeypatch) -> list[tuple[int, int]]:
    """The sizes of the images whose pixels Pillow decoded (``load``), through Image.open's images."""
    seen: list[tuple[int, int]] = []
    real_open = Image.open

    def spying_open(*args, **kwargs):
        img = real_open(*args, **kwargs)
        real_load = img.load

        def load():
            seen.append(img.size)
            return real_load()

        img.load = load
        return img

    monkeypatch.setattr(Image, "open", spying_open)
    return seen


def test_the_load_spy_sees_a_decoded_image(tmp_path, loads):
    path = tmp_path / "ok.png"
    path.write_bytes(_tiny("PNG"))
    decode_image(path, 4)
    assert loads and set(loads) == {(4, 4)}  # the control: the spy sees what it watches for


def test_decompression_bombs_are_refused_before_decoding(tmp_path, loads):
    @fuzz("bombs")
    @given(bombs())
    def check(bomb):
        _count("bombs")
        ext, w, h, data = bomb
        path = tmp_path / f"bomb.{ext}"
        path.write_bytes(data)
        start = time.perf_counter()
        with pytest.raises(DecodeError) as info:
            decode_image(path, 8)
        assert time.perf_counter() - start < 2.0
        assert_refusal(info.value, path)
        msg = str(info.value)
        assert "bomb" in msg or (ext == "webp" and "convert it to PNG" in msg), msg
        assert not loads, f"{w}x{h} {ext}: Pillow decoded pixels of {loads}"

    check()
    _ran_all("bombs")


def test_a_header_below_the_bomb_limit_is_decoded(tmp_path, loads):
    """The control of the bomb test: the same writer with a size under the limit does reach decoding."""
    path = tmp_path / "fine.png"
    path.write_bytes(_png(64, 48))
    assert decode_or_refuse(path, 8) is None  # the IDAT holds 4x4 pixels: truncated, refused...
    assert loads and set(loads) == {(64, 48)}  # ...but only after Pillow started decoding


@pytest.mark.parametrize("shape", [(1, 60_000), (60_000, 1), (3, 5_000)])
def test_long_thin_images_are_not_enlarged_whole(shape, monkeypatch):
    """Enlarging 1 x 60,000 px to 224 would first make a 224 x 13-million-pixel image (GBs)."""
    img = Image.new("RGB", shape, (10, 200, 30))
    sizes = []
    real_resize = Image.Image.resize

    def resize(self, size, *args, **kwargs):
        sizes.append(size)
        return real_resize(self, size, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "resize", resize)
    out = np.asarray(resize_center(img, 224))
    assert out.shape == (224, 224, 3) and (out == (10, 200, 30)).all()
    assert max(w * h for w, h in sizes) <= 4 * 224 * 224
    sizes.clear()
    resize_center(Image.new("RGB", (100, 50)), 224)  # the control: an ordinary enlargement is seen
    assert sizes == [(448, 224)]


def test_long_image_path_matches_resize_then_crop():
    """The long-image path gives the pixels the ordinary resize-then-crop gives (up to one grey level)."""
    rng = np.random.default_rng(3)
    img = Image.fromarray(rng.integers(0, 256, (9, 200, 3), dtype=np.uint8))
    fast = np.asarray(resize_center(img, 32)).astype(int)
    scale = 32 / 9
    whole = img.resize((round(200 * scale), 32), decode_mod.RESAMPLE)
    left = (whole.width - 32) // 2
    slow = np.asarray(whole.crop((left, 0, left + 32, 32))).astype(int)
    assert np.abs(fast - slow).max() <= 1
