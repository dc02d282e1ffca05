"""Bad names (issue 6): random file names through the file inputs and dataset discovery, any text through the
BreakHis parser and the magnification parser. Nothing but a DataError (or a clean result) comes out."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.core.errors import DataError, DecodeError
from engine.data.breakhis import TUMOR_TYPES, BreakHisName, normalise_magnification, parse_breakhis_name
from engine.data.decode import decode_image
from engine.data.discover import discover
from engine.data.inputs import collect_images
from tests.engine.data.fuzzing import (  # noqa: F401 (pytestmark: the module's marks)
    COUNTS,
    FUZZ,
    PLAN,
    _count,
    _ran_all,
    _tiny,
    assert_refusal,
    decode_or_refuse,
    fuzz,
    pytestmark,
    shown,
)


def test_plan_runs_over_a_thousand_examples():
    assert sum(PLAN.values()) >= 1000


def test_odd_file_names_are_shown_escaped_on_one_line(tmp_path):
    name = "a\nb\x1b[31m\udce9\u2028é.png"  # a newline, a terminal colour code, a byte that is not UTF-8
    path = tmp_path / name
    path.write_bytes(b"not an image")
    with pytest.raises(DecodeError) as info:
        decode_image(path, 8)
    assert "a\\x0ab\\x1b[31m\\udce9\\u2028é.png: not an image" in str(info.value)
    assert_refusal(info.value, path)


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
