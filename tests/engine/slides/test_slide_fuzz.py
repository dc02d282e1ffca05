"""Damaged and odd slide files, fuzzed: every example either opens and is read like a slide (info, thumbnail,
regions of the first and last level, the tissue mask; every fifth one predicted with the tiny ONNX model) or is
refused with a SlideError, within a time bound. Never a hang, never another exception type.

A seeded loop (reproducible: a failure names the example's format, mutation and seed) over small files of each
format a lab sends (tests/engine/slides/slide_files.py): Aperio .svs (JPEG tiles), generic tiled .tif, an untiled
.tiff, Hamamatsu .ndpi, a DICOM WSI instance (.dcm, alone in its folder) and plain .png/.jpg, each truncated,
bit-flipped, overwritten in a stretch, or replaced by random bytes, plus pictures in odd pixel formats.
"""

from __future__ import annotations

import io
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.core.errors import SlideError
from engine.deploy.tiny import write_tiny_model
from engine.slides import open_slide, slide_info, tissue_mask
from tests.engine.slides import slide_files as sf

EXAMPLES = 2000  # at least 1,000 in CI; about 8 s on one free core
PER_EXAMPLE_S = 5.0  # the longest one example may take (OpenSlide's C code cannot be interrupted in-process)
MUTATIONS = ("truncate", "bitflip", "stretch", "random", "header")


def base_files(folder: Path) -> dict[str, bytes]:
    """The intact files, as bytes: suffix -> content."""
    image = sf.tissue_image(96, 128)
    writers = {
        ".svs": lambda p: sf.write_svs(p, image, levels=2, tile=64),
        ".tif": lambda p: sf.write_tiff(p, image, levels=2, tile=32),
        ".tiff": lambda p: sf.write_plain(p, image),
        ".ndpi": lambda p: sf.write_ndpi(p, image, levels=2),
        ".png": lambda p: sf.write_plain(p, image),
        ".jpg": lambda p: sf.write_plain(p, image),
    }
    out = {suffix: write(folder / f"base{suffix}").read_bytes() for suffix, write in writers.items()}
    out[".dcm"] = (sf.write_dicom(folder / "dicom", image, levels=1, tile=32) / "level0.dcm").read_bytes()
    return out


def mutate(data: bytes, how: str, rng: np.random.Generator) -> bytes:
    n = len(data)
    if how == "truncate":
        return data[: int(rng.integers(0, n))]
    if how == "random":
        return rng.bytes(int(rng.integers(0, 4096)))
    out = bytearray(data)
    if how == "bitflip":
        for at in rng.integers(0, n, int(rng.integers(1, 17))):
            out[at] ^= 1 << int(rng.integers(0, 8))
    elif how == "stretch":
        start = int(rng.integers(0, n))
        end = min(n, start + int(rng.integers(1, 257)))
        out[start:end] = rng.bytes(end - start)
    else:  # "header": the first 512 bytes (the structure: TIFF IFDs, DICOM preamble, PNG chunks) flipped
        for at in rng.integers(0, min(n, 512), int(rng.integers(1, 9))):
            out[at] = int(rng.integers(0, 256))
    return bytes(out)


def odd_pictures() -> dict[str, bytes]:
    """Valid pictures a plain-image reader may not expect: palette, 16-bit, 1-bit, CMYK, LA, 1x1, huge claims."""
    rgb = Image.fromarray(sf.tissue_image(40, 48))
    pictures = {
        "palette.png": rgb.convert("P"), "grey16.png": rgb.convert("I;16"), "bilevel.png": rgb.convert("1"),
        "la.png": rgb.convert("LA"), "rgba.png": rgb.convert("RGBA"), "cmyk.jpg": rgb.convert("CMYK"),
        "grey.jpg": rgb.convert("L"), "dot.png": rgb.resize((1, 1)), "float.tiff": rgb.convert("F"),
    }  # fmt: skip
    out = {}
    for name, picture in pictures.items():
        buffer = io.BytesIO()
        picture.save(buffer, format={"png": "PNG", "jpg": "JPEG", "tiff": "TIFF"}[name.rsplit(".", 1)[1]])
        out[name] = buffer.getvalue()
    png = out["rgba.png"]  # an IHDR (with its CRC) claiming 60,000 x 60,000 px (3.6 Gpx) over 40 x 48 px of data
    ihdr = png[12:16] + (60_000).to_bytes(4, "big") * 2 + png[24:29]
    out["claims-huge.png"] = png[:12] + ihdr + zlib.crc32(ihdr).to_bytes(4, "big") + png[33:]
    return out


def exercise(path: Path, model: Path | None) -> str:
    """'read' or 'refused'; raises anything that is not a SlideError."""
    try:
        with open_slide(path) as slide:
            info = slide_info(slide, path)
            slide.get_thumbnail((32, 32))
            last = info.level_count - 1
            slide.read_region((0, 0), 0, (16, 16))
            w, h = info.level_dimensions[last]
            ds = info.level_downsamples[last]
            slide.read_region((int(w // 2 * ds), int(h // 2 * ds)), last, (16, 16))
            mask, _ = tissue_mask(slide, max_side=32)
            assert mask.dtype == bool and mask.ndim == 2
        if model is not None:
            from engine.slides.predict import predict_slide

            pred = predict_slide(path, model, min_tissue=0.0, device="cpu")
            assert np.isfinite(pred.probabilities).all()
    except SlideError as exc:
        message = str(exc)
        assert "\n" not in message and path.name in message, message  # one line naming the file
        return "refused"
    return "read"


@pytest.mark.timeout(120)  # a hang fails here, not after the whole run's limit
@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns of each damaged TIFF tag it skips
def test_damaged_and_odd_files_open_or_fail_with_a_slide_error(tmp_path):
    bases = base_files(tmp_path)
    model = write_tiny_model(tmp_path / "tiny.onnx", image_size=16)
    rng = np.random.default_rng(20250101)
    outcomes, slowest = {}, (0.0, "")
    cases = [(name, None, data) for name, data in odd_pictures().items()]
    cases += [(f"fuzz{suffix}", how, None) for suffix in bases for how in MUTATIONS]
    for i in range(EXAMPLES):
        name, how, data = cases[i % len(cases)]
        if how is not None:
            data = mutate(bases["." + name.split(".", 1)[1]], how, rng)
        folder = tmp_path / f"case{i % len(cases)}"  # one folder per case: a DICOM is found among its neighbours
        folder.mkdir(exist_ok=True)
        path = folder / name
        path.write_bytes(data)
        started = time.perf_counter()
        try:
            outcome = exercise(path, model if i % 5 == 0 else None)
        except Exception as exc:  # noqa: BLE001 - reported with what reproduces it
            raise AssertionError(f"example {i} ({name}, {how}): {type(exc).__name__}: {exc}") from exc
        took = time.perf_counter() - started
        assert took < PER_EXAMPLE_S, f"example {i} ({name}, {how}) took {took:.1f} s"
        slowest = max(slowest, (took, f"{name} {how}"))
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert outcomes.get("read", 0) > 50 and outcomes.get("refused", 0) > 300, outcomes  # both paths exercised
    print(f"{EXAMPLES} examples: {outcomes}; slowest {slowest[0] * 1000:.0f} ms ({slowest[1]})")


@pytest.mark.parametrize("suffix", [".svs", ".tif", ".tiff", ".ndpi", ".dcm", ".png", ".jpg"])
def test_the_intact_files_of_each_format_are_read(tmp_path, suffix):
    """Control for the fuzz: unmutated, every base file is read, never refused."""
    data = base_files(tmp_path)[suffix]
    (tmp_path / "one").mkdir()
    path = tmp_path / "one" / f"slide{suffix}"
    path.write_bytes(data)
    assert exercise(path, write_tiny_model(tmp_path / "tiny.onnx", image_size=16)) == "read"
