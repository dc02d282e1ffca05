"""BreakHis file names: ``SOB_<B|M>_<type>-<yy>-<slide>-<mag>-<seq>.png``.

Slide numbers that differ only by a letter suffix (``22549AB`` / ``22549CD``) come from one patient, so the
patient id used for splitting is ``<yy>-<slide digits>`` (e.g. ``14-22549``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# ASCII only: with Unicode matching, \d takes other scripts' digits ("١٤") and IGNORECASE lets "ſ" (long s) or
# "K" (Kelvin sign) pass as letters, so one patient could get two ids. Digit runs are bounded: a file name of
# thousands of digits would otherwise make int() raise (Python's 4,300-digit limit) instead of not matching.
BREAKHIS_NAME = re.compile(
    r"^SOB_(?P<bm>[BM])_(?P<type>[A-Z]+)-(?P<yy>\d{2})-(?P<slide>\d{1,12})(?P<suffix>[A-Z]*)"
    r"-(?P<mag>\d{1,4})-(?P<seq>\d{1,9})\.png$",
    re.IGNORECASE | re.ASCII,
)

TUMOR_TYPES = {
    "A": "adenosis",
    "F": "fibroadenoma",
    "PT": "phyllodes_tumor",
    "TA": "tubular_adenoma",
    "DC": "ductal_carcinoma",
    "LC": "lobular_carcinoma",
    "MC": "mucinous_carcinoma",
    "PC": "papillary_carcinoma",
}
BENIGN_TYPES = {"A", "F", "PT", "TA"}
MAGNIFICATIONS = ("40X", "100X", "200X", "400X")


@dataclass(frozen=True)
class BreakHisName:
    label: str  # "benign" | "malignant"
    tumor_type: str
    patient_id: str  # year-slide without letter suffix, e.g. "14-22549"
    slide_id: str  # the original patient folder, e.g. "SOB_B_A-14-22549AB"
    magnification: str  # "40X" ...
    seq: int


def parse_breakhis_name(name: str) -> BreakHisName | None:
    """Parse a BreakHis file name; ``None`` when ``name`` does not follow the pattern."""
    m = BREAKHIS_NAME.fullmatch(name)
    if m is None:
        return None
    bm, code = m["bm"].upper(), m["type"].upper()
    label = "benign" if bm == "B" else "malignant"
    slide = f"{m['slide']}{m['suffix'].upper()}"
    return BreakHisName(
        label=label,
        tumor_type=TUMOR_TYPES.get(code, code.lower()),
        patient_id=f"{m['yy']}-{int(m['slide'])}",
        slide_id=f"SOB_{bm}_{code}-{m['yy']}-{slide}",
        magnification=f"{int(m['mag'])}X",
        seq=int(m["seq"]),
    )


def normalise_magnification(value: str) -> str:
    """'40', '40x', '40X' -> '40X'."""
    digits = value.strip().upper().rstrip("X")
    if not (digits.isascii() and digits.isdigit() and len(digits) <= 4):  # not "²" or "٤٠": int() differs
        shown = value if len(value) <= 40 else value[:37] + "..."
        raise ValueError(f"magnification {shown!r} is not like 40X")
    return f"{int(digits)}X"
