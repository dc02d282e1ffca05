"""BreakHis file names -> label, tumour type, patient, slide, magnification, sequence number."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.data.breakhis import (
    BENIGN_TYPES,
    BREAKHIS_NAME,
    TUMOR_TYPES,
    BreakHisName,
    normalise_magnification,
    parse_breakhis_name,
)


def test_benign_name_fields():
    name = parse_breakhis_name("SOB_B_A-14-22549AB-40-001.png")
    assert name == BreakHisName(
        label="benign",
        tumor_type="adenosis",
        patient_id="14-22549",
        slide_id="SOB_B_A-14-22549AB",
        magnification="40X",
        seq=1,
    )


def test_malignant_name_fields():
    name = parse_breakhis_name("SOB_M_DC-14-2523-400-010.png")
    assert name is not None
    assert name.label == "malignant"
    assert name.tumor_type == "ductal_carcinoma"
    assert name.patient_id == "14-2523"
    assert name.slide_id == "SOB_M_DC-14-2523"
    assert name.magnification == "400X"
    assert name.seq == 10


@pytest.mark.parametrize("code", sorted(TUMOR_TYPES))
def test_every_tumour_code(code):
    bm = "B" if code in BENIGN_TYPES else "M"
    name = parse_breakhis_name(f"SOB_{bm}_{code}-14-1234-100-007.png")
    assert name is not None
    assert name.tumor_type == TUMOR_TYPES[code]
    assert name.label == ("benign" if code in BENIGN_TYPES else "malignant")
    assert name.slide_id == f"SOB_{bm}_{code}-14-1234"


def test_tumour_codes_cover_the_dataset():
    assert set(TUMOR_TYPES) == {"A", "F", "PT", "TA", "DC", "LC", "MC", "PC"}
    assert BENIGN_TYPES == {"A", "F", "PT", "TA"}


@pytest.mark.parametrize(
    ("mag", "expected"), [("40", "40X"), ("100", "100X"), ("200", "200X"), ("400", "400X"), ("040", "40X")]
)
def test_magnification_normalised(mag, expected):
    name = parse_breakhis_name(f"SOB_M_LC-14-12204-{mag}-001.png")
    assert name is not None and name.magnification == expected


@pytest.mark.parametrize(("seq", "expected"), [("001", 1), ("010", 10), ("123", 123), ("7", 7)])
def test_sequence_number(seq, expected):
    name = parse_breakhis_name(f"SOB_B_F-14-9133-40-{seq}.png")
    assert name is not None and name.seq == expected


def test_letter_suffixes_share_a_patient_but_not_a_slide():
    ab = parse_breakhis_name("SOB_B_A-14-22549AB-40-001.png")
    cd = parse_breakhis_name("SOB_B_A-14-22549CD-100-003.png")
    assert ab is not None and cd is not None
    assert ab.patient_id == cd.patient_id == "14-22549"
    assert ab.slide_id == "SOB_B_A-14-22549AB"
    assert cd.slide_id == "SOB_B_A-14-22549CD"
    assert ab.slide_id != cd.slide_id


def test_different_years_or_slides_are_different_patients():
    a = parse_breakhis_name("SOB_M_PC-14-190EF-400-001.png")
    b = parse_breakhis_name("SOB_M_PC-15-190EF-400-001.png")
    c = parse_breakhis_name("SOB_M_PC-15-1900-400-001.png")
    assert a is not None and b is not None and c is not None
    assert len({a.patient_id, b.patient_id, c.patient_id}) == 3
    assert b.patient_id == "15-190"


@pytest.mark.parametrize(
    "name", ["SOB_B_A-14-22549AB-40-001.PNG", "sob_b_a-14-22549ab-40-001.png", "SOB_B_A-14-22549AB-40-001.Png"]
)
def test_case_insensitive(name):
    parsed = parse_breakhis_name(name)
    assert parsed is not None
    assert parsed.label == "benign"
    assert parsed.tumor_type == "adenosis"
    assert parsed.patient_id == "14-22549"
    # the slide id is normalised to upper case whatever the spelling of the file name
    assert parsed.slide_id == "SOB_B_A-14-22549AB"
    assert parsed.magnification == "40X"


@pytest.mark.parametrize(
    "name",
    [
        "",
        "image.png",
        "random_name_123.png",
        "SOB_B_A-14-22549AB-40-001.jpg",  # wrong extension
        "SOB_B_A-14-22549AB-40-001.tif",
        "SOB_B_A-14-22549AB-40-001",  # no extension
        "SOB_B_A-14-22549AB-40-001.png.bak",
        "SOB_X_A-14-22549AB-40-001.png",  # neither B nor M
        "SOB_B-14-22549AB-40-001.png",  # no tumour type
        "SOB_B_A-22549AB-40-001.png",  # no year
        "SOB_B_A-14-22549AB-001.png",  # no magnification
        "SOB_B_A-14-22549AB-40.png",  # no sequence number
        "SOB_B_A-14-AB-40-001.png",  # no slide digits
        "SOB_B_A-140-22549AB-40-001.png",  # three-digit year
        "SOB_B_A_14-22549AB",  # the patient folder, not a file
        "XSOB_B_A-14-22549AB-40-001.png",
        "SOB_B_A-14-22549AB-40X-001.png",  # magnification written with X
        "SOB_B_A-14-22549AB-40-001.png\n",  # trailing newline
        " SOB_B_A-14-22549AB-40-001.png",
    ],
)
def test_non_matching_names_give_none(name):
    assert parse_breakhis_name(name) is None


@pytest.mark.parametrize(
    ("value", "expected"), [("40", "40X"), ("40x", "40X"), ("40X", "40X"), (" 100X ", "100X"), ("0400", "400X")]
)
def test_normalise_magnification(value, expected):
    assert normalise_magnification(value) == expected


@pytest.mark.parametrize("value", ["", "X", "high", "40XX0", "4.0X"])
def test_normalise_magnification_rejects(value):
    with pytest.raises(ValueError, match="magnification"):
        normalise_magnification(value)


# text that is often one edit away from a BreakHis name: random characters spliced into a real name
near_names = st.builds(
    lambda head, cut, junk: head[:cut] + junk + head[cut:],
    st.sampled_from(["SOB_B_A-14-22549AB-40-001.png", "SOB_M_DC-14-2523-400-010.png", "sob_m_lc-15-1-100-1.PNG"]),
    st.integers(0, 30),
    st.text(max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=60), near_names))
def test_the_parser_accepts_exactly_the_names_of_the_pattern(text):
    """Never raises, and answers None exactly when the text is not a BreakHis name; a name it accepts reads back
    the slide digits, magnification and sequence number written in it."""
    result = parse_breakhis_name(text)
    match = BREAKHIS_NAME.fullmatch(text)
    assert (result is None) == (match is None)
    if result is not None:
        assert result.patient_id == f"{match['yy']}-{int(match['slide'])}"
        assert result.magnification == f"{int(match['mag'])}X" and result.seq == int(match["seq"])
        assert result.label == ("benign" if match["bm"].upper() == "B" else "malignant")


name_parts = st.fixed_dictionaries(
    {
        "bm_code": st.sampled_from(sorted(TUMOR_TYPES)),
        "yy": st.integers(0, 99),
        "slide": st.integers(1, 99999),
        "suffix": st.sampled_from(["", "AB", "CD", "E", "EF"]),
        "mag": st.sampled_from([40, 100, 200, 400]),
        "seq": st.integers(1, 999),
    }
)


@settings(max_examples=100, deadline=None)
@given(name_parts)
def test_generated_names_round_trip(p):
    bm = "B" if p["bm_code"] in BENIGN_TYPES else "M"
    file = f"SOB_{bm}_{p['bm_code']}-{p['yy']:02d}-{p['slide']}{p['suffix']}-{p['mag']}-{p['seq']:03d}.png"
    name = parse_breakhis_name(file)
    assert name is not None
    assert name.patient_id == f"{p['yy']:02d}-{p['slide']}"
    assert name.slide_id == f"SOB_{bm}_{p['bm_code']}-{p['yy']:02d}-{p['slide']}{p['suffix']}"
    assert name.magnification == f"{p['mag']}X"
    assert name.seq == p["seq"]
    assert name.tumor_type == TUMOR_TYPES[p["bm_code"]]
