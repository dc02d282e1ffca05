"""Bad input, everywhere (issue 6): random and damaged files through the image loader, random names through
the file inputs, the dataset discovery and the BreakHis parser.

The property: a file either decodes to a uint8 (size, size, 3) array or raises DecodeError whose message names
the file and says what to do. Nothing else escapes (no Pillow exception, struct.error, MemoryError ...), nothing
hangs (a hypothesis deadline per example and a pytest timeout per test), and a decompression bomb is refused
before Pillow decodes a pixel. Deterministic in CI (derandomize, no example database); ``PLAN`` says how many
examples each test runs, over 1,000 in all, on images of 1-16 px.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import struct
import tempfile
import time
import warnings
import zlib
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from engine.core.errors import DataError, DecodeError
from engine.data import decode as decode_mod
from engine.data.breakhis import TUMOR_TYPES, BreakHisName, normalise_magnification, parse_breakhis_name
from engine.data.decode import MAX_PIXELS, decode_image, load_rgb, resize_center
from engine.data.discover import discover
from engine.data.inputs import collect_images

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


def test_plan_runs_over_a_thousand_examples():
    assert sum(PLAN.values()) >= 1000


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


def test_odd_file_names_are_shown_escaped_on_one_line(tmp_path):
    name = "a\nb\x1b[31m\udce9\u2028é.png"  # a newline, a terminal colour code, a byte that is not UTF-8
    path = tmp_path / name
    path.write_bytes(b"not an image")
    with pytest.raises(DecodeError) as info:
        decode_image(path, 8)
    assert "a\\x0ab\\x1b[31m\\udce9\\u2028é.png: not an image" in str(info.value)
    assert_refusal(info.value, path)


def decode_or_refuse(path: Path, size: int, max_pixels: int | None = None) -> np.ndarray | None:
    """The array of a good file, None for a refused one; any other exception fails the test."""
    try:
        out = decode_image(path, size, max_pixels)
    except DecodeError as exc:
        assert_refusal(exc, path)
        return None
    assert out.dtype == np.uint8 and out.shape == (size, size, 3)
    return out


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


def _tiny(fmt: str) -> bytearray:
    buf = io.BytesIO()
    Image.new("RGB" if fmt in ("BMP", "WEBP") else "L", (4, 4), 128).save(buf, fmt)
    return bytearray(buf.getvalue())


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


# --- file names -------------------------------------------------------------------------------------------------

VALID_NAME = "SOB_B_TA-14-16184CD-100-001.png"


@st.composite
def near_miss_names(draw) -> str:
    """A BreakHis name with one character deleted, inserted or replaced."""
    name = VALID_NAME
    i = draw(st.integers(0, len(name) - 1))
    char = draw(st.sampled_from("SOB_MBX-0123456789.pngAZaz ") | st.characters())
    edits = [name[:i] + name[i + 1 :], name[:i] + char + name[i:], name[:i] + char + name[i + 1 :]]
    return draw(st.sampled_from(edits))


file_names = st.one_of(
    st.text(min_size=1, max_size=40),  # any unicode
    st.binary(min_size=1, max_size=30).map(os.fsdecode),  # bytes that are not UTF-8 (lone surrogates)
    st.from_regex(r"[-\s]{1,3}[-\w .]{0,20}\.(png|jpg|tif)", fullmatch=True),  # leading dashes and spaces
    st.integers(250, 320).map(lambda n: "x" * n + ".png"),  # longer than a file name may be
    st.sampled_from([".", "..", " ", "-", "--help", "~", "~nobody_here/x", "a\x00b.png", "a\nb.png", "\x1b[31m.png"]),
    near_miss_names(),
)


def _write(path: Path, data: bytes) -> bool:
    try:
        path.write_bytes(data)
        return path.is_file()
    except (OSError, ValueError):  # a name no file may have (NUL, too long, "..")
        return False


def test_random_file_names(tmp_path):
    png = _tiny("PNG")

    @fuzz("file_names")
    @given(file_names.map(lambda n: n.replace("/", "_")))
    def check(name):
        _count("file_names")
        parsed = parse_breakhis_name(name)
        assert parsed is None or isinstance(parsed, BreakHisName)
        root = Path(tempfile.mkdtemp(dir=tmp_path))
        try:
            path = root / name
            written = _write(path, png)
            out = decode_or_refuse(path, 4)
            assert (out is not None) == written, f"{name!r}: written {written}, decoded {out is not None}"
            try:
                assert collect_images([path]) == [path] and written
            except DataError as exc:
                assert not written and str(exc)
            _check_discover(root, name, png)
        finally:
            shutil.rmtree(root, ignore_errors=True)

    check()
    _ran_all("file_names")


def _check_discover(root: Path, name: str, png: bytes) -> None:
    """A class-folder dataset holding the odd name is read, or refused with a DataError."""
    data = root / "data"
    for label in ("benign", "malignant"):
        (data / label).mkdir(parents=True)
        _write(data / label / "ok.png", png)
        _write(data / label / name, png)
    try:
        dataset = discover(data, positive_class="malignant")
    except DataError:
        return
    assert len(dataset.records) >= 2 and set(dataset.classes) == {"benign", "malignant"}


# --- the BreakHis parser ----------------------------------------------------------------------------------------


def canonical(p: BreakHisName) -> str:
    return f"{p.slide_id}-{p.magnification[:-1]}-{p.seq:03d}.png"


def assert_consistent(p: BreakHisName) -> None:
    """The fields agree with one another and parse back from the name they make (ASCII only)."""
    assert p.label in ("benign", "malignant")
    assert re.fullmatch(r"SOB_[BM]_[A-Z]+-\d\d-\d+[A-Z]*", p.slide_id, re.ASCII), p
    assert p.slide_id[4] == ("B" if p.label == "benign" else "M")
    assert re.fullmatch(r"\d\d-[1-9]\d*|\d\d-0", p.patient_id, re.ASCII), p
    assert re.fullmatch(r"[1-9]\d*X|0X", p.magnification, re.ASCII) and p.seq >= 0
    assert parse_breakhis_name(canonical(p)) == p


def test_parser_never_raises_on_any_text():
    digits = st.builds(str.__mul__, st.sampled_from("0123456789"), st.integers(1, 6000))  # int() stops at 4,300
    long_numbers = st.builds(lambda d: f"SOB_B_A-14-{d}-40-{d}.png", digits)

    @fuzz("parser_text")
    @given(st.text(max_size=80) | st.binary(max_size=60).map(os.fsdecode) | long_numbers)
    def check(text):
        _count("parser_text")
        parsed = parse_breakhis_name(text)
        if parsed is not None:
            assert_consistent(parsed)

    check()
    _ran_all("parser_text")


def test_unicode_look_alikes_do_not_parse():
    assert parse_breakhis_name("SOB_B_A-14-22549-40-001.png") is not None  # the control
    assert parse_breakhis_name("SOB_B_A-\u0661\u0664-22549-40-001.png") is None  # Arabic-Indic digits
    assert parse_breakhis_name("\u017fOB_B_A-14-22549-40-001.png") is None  # long s, matched "S" ignoring case
    assert parse_breakhis_name("SOB_B_A-14-22549\u212a-40-001.png") is None  # Kelvin sign, matched "K"


def test_parser_round_trip_in_any_case():
    @fuzz("parser_round_trip")
    @given(
        st.sampled_from(sorted(TUMOR_TYPES) + ["XY"]),
        st.sampled_from("BM"),
        st.integers(0, 99),
        st.text("0123456789", min_size=1, max_size=8),
        st.text("ABCDEFGH", max_size=3),
        st.sampled_from(["40", "100", "200", "400", "040"]),
        st.integers(0, 99999),
        st.lists(st.booleans(), min_size=40, max_size=40),
    )
    def check(code, bm, yy, slide, suffix, mag, seq, lower):
        _count("parser_round_trip")
        name = f"SOB_{bm}_{code}-{yy:02d}-{slide}{suffix}-{mag}-{seq:03d}.png"
        cased = "".join(c.lower() if lo else c for c, lo in zip(name, lower + [False] * len(name)))
        p = parse_breakhis_name(cased)
        assert p is not None, cased
        assert p.label == ("benign" if bm == "B" else "malignant")
        assert p.tumor_type == TUMOR_TYPES.get(code, code.lower())
        assert p.patient_id == f"{yy:02d}-{int(slide)}"
        assert p.slide_id == f"SOB_{bm}_{code}-{yy:02d}-{slide}{suffix}"
        assert p.magnification == f"{int(mag)}X" and p.seq == seq
        assert_consistent(p)

    check()
    _ran_all("parser_round_trip")


def test_parser_near_misses():
    @fuzz("parser_near_misses")
    @given(near_miss_names())
    def check(name):
        _count("parser_near_misses")
        parsed = parse_breakhis_name(name)
        if parsed is not None:
            assert_consistent(parsed)

    check()
    _ran_all("parser_near_misses")


def test_normalise_magnification_on_any_text():
    @fuzz("magnification")
    @given(st.text(max_size=12) | st.from_regex(r"\s*\d{1,6}[xX]{0,2}\s*", fullmatch=True))
    def check(value):
        _count("magnification")
        try:
            mag = normalise_magnification(value)
        except ValueError as exc:
            assert "magnification" in str(exc) and "not like 40X" in str(exc)
            return
        assert re.fullmatch(r"\d+X", mag, re.ASCII)
        assert int(mag[:-1]) == int(value.strip().upper().rstrip("X"))

    check()
    _ran_all("magnification")
