"""Tests of the synthetic BreakHis-style demo dataset (engine.data.demo)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.core.errors import Cancelled, DataError
from engine.core.progress import CancelToken, Progress
from engine.data.demo import DEMO_MARKER, MAGNIFICATIONS, PNG_COMMENT, generate_demo_dataset, is_synthetic_demo

NAME = re.compile(r"^SOB_([BM])_([A-Z]+)-(\d{2})-(\d+)([A-Z]*)-(\d+)-(\d+)\.png$")
PATIENTS, IMAGES = 4, 8
TYPES = {"B": {"A", "F", "PT", "TA"}, "M": {"DC", "LC", "MC", "PC"}}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_demo_dataset(
        tmp_path_factory.mktemp("demo") / "data", patients_per_class=PATIENTS, images_per_patient=IMAGES
    )


def _pngs(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != DEMO_MARKER)


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float32)


def test_names_follow_breakhis_and_match_their_folder(demo: Path) -> None:
    files = _pngs(demo)
    assert {p.parent.name for p in files} == {"benign", "malignant"}
    assert not [p for p in files if p.name.startswith(".")], "temporary files left behind"
    patients: dict[str, set[str]] = {"B": set(), "M": set()}
    for path in files:
        match = NAME.match(path.name)
        assert match, path.name
        code, tumour, year, slide, _suffix, mag, seq = match.groups()
        assert path.parent.name == {"B": "benign", "M": "malignant"}[code]
        assert tumour in TYPES[code] and year == "99" and len(seq) == 3
        assert int(mag) in MAGNIFICATIONS
        patients[code].add(slide)
    assert Counter(p.parent.name for p in files) == {"benign": PATIENTS * IMAGES, "malignant": PATIENTS * IMAGES}
    assert len(patients["B"]) == len(patients["M"]) == PATIENTS
    assert not patients["B"] & patients["M"], "slide numbers must be unique per patient"
    assert len({p.name for p in files}) == len(files)


def test_every_magnification_and_tumour_type_occurs(demo: Path) -> None:
    matches = [NAME.match(p.name) for p in _pngs(demo)]
    assert {int(m.group(6)) for m in matches} == set(MAGNIFICATIONS)
    for code in "BM":
        assert {m.group(2) for m in matches if m.group(1) == code} == TYPES[code]
    per_patient = Counter((m.group(4), int(m.group(6))) for m in matches)
    assert all(per_patient[(slide, mag)] >= 1 for slide, _ in per_patient for mag in MAGNIFICATIONS)


def test_one_benign_patient_is_split_over_two_slide_folders(demo: Path) -> None:
    suffixes: dict[str, Counter] = {}
    for m in (NAME.match(p.name) for p in _pngs(demo)):
        suffixes.setdefault(m.group(4), Counter())[m.group(5)] += 1
    split = {slide: c for slide, c in suffixes.items() if set(c) - {""}}
    assert len(split) == 1
    ((slide, counts),) = split.items()
    assert counts == {"AB": IMAGES // 2, "CD": IMAGES - IMAGES // 2}
    assert any(p.name.startswith("SOB_B_") and f"-{slide}AB-" in p.name for p in (demo / "benign").iterdir())


def test_images_are_rgb_of_the_requested_size_and_tagged_synthetic(demo: Path) -> None:
    for path in _pngs(demo)[::5]:
        with Image.open(path) as image:
            assert image.mode == "RGB" and image.size == (175, 115)
            assert image.text.get("Comment") == PNG_COMMENT
    custom = generate_demo_dataset(
        demo.parent / "small", patients_per_class=1, images_per_patient=1, image_size=(96, 64)
    )
    assert {Image.open(p).size for p in _pngs(custom)} == {(96, 64)}


def test_marker_says_synthetic_and_is_found_from_below(demo: Path, tmp_path: Path) -> None:
    text = (demo / DEMO_MARKER).read_text(encoding="utf-8")
    assert "SYNTHETIC" in text and "not real tissue" in text.lower() and "diagnosis" in text
    assert "status: complete" in text and '"patients_per_class": 4' in text
    assert is_synthetic_demo(demo)
    assert is_synthetic_demo(demo / "benign")
    assert is_synthetic_demo(next((demo / "malignant").iterdir()))
    assert not is_synthetic_demo(tmp_path)
    assert not is_synthetic_demo(tmp_path / "missing")


def test_same_arguments_give_identical_bytes(tmp_path: Path) -> None:
    a = generate_demo_dataset(tmp_path / "a", patients_per_class=2, images_per_patient=4, seed=7)
    b = generate_demo_dataset(tmp_path / "b", patients_per_class=2, images_per_patient=4, seed=7)
    c = generate_demo_dataset(tmp_path / "c", patients_per_class=2, images_per_patient=4, seed=8)
    names = [p.relative_to(a) for p in _pngs(a)]
    assert names == [p.relative_to(b) for p in _pngs(b)]
    assert all((a / n).read_bytes() == (b / n).read_bytes() for n in names)
    assert any((a / n).read_bytes() != (c / n).read_bytes() for n in names)
    assert len({(a / n).read_bytes() for n in names}) == len(names), "every image must differ"


def test_refuses_a_folder_that_is_not_a_demo(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(DataError, match="not a HistoGuard demo"):
        generate_demo_dataset(tmp_path, patients_per_class=1, images_per_patient=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(DataError, match="is a file"):
        generate_demo_dataset(tmp_path / "file.png")
    with pytest.raises(DataError):
        generate_demo_dataset(tmp_path / "bad", patients_per_class=0)
    with pytest.raises(DataError):
        generate_demo_dataset(tmp_path / "bad", image_size=(8, 8))


def test_reuses_a_complete_demo_and_regenerates_on_new_parameters(tmp_path: Path) -> None:
    root = generate_demo_dataset(tmp_path / "d", patients_per_class=2, images_per_patient=4)
    before = {p: p.stat().st_mtime_ns for p in [*_pngs(root), root / DEMO_MARKER]}
    events: list[Progress] = []
    assert generate_demo_dataset(root, patients_per_class=2, images_per_patient=4, on_progress=events.append) == root
    assert {p: p.stat().st_mtime_ns for p in before} == before
    assert events and events[-1].done == events[-1].total == 16
    generate_demo_dataset(root, patients_per_class=1, images_per_patient=4)
    assert len(_pngs(root)) == 8, "images of the old parameters must be removed"
    assert '"patients_per_class": 1' in (root / DEMO_MARKER).read_text(encoding="utf-8")


def test_a_demo_written_by_an_older_generator_is_regenerated(tmp_path: Path, monkeypatch) -> None:
    import engine.data.demo as demo_module

    current = demo_module.GENERATOR_VERSION
    monkeypatch.setattr(demo_module, "GENERATOR_VERSION", current - 1)
    root = generate_demo_dataset(tmp_path / "d", patients_per_class=1, images_per_patient=2)
    before = {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in _pngs(root)}
    monkeypatch.setattr(demo_module, "GENERATOR_VERSION", current)
    generate_demo_dataset(root, patients_per_class=1, images_per_patient=2)
    assert f'"version": {current}' in (root / DEMO_MARKER).read_text(encoding="utf-8")
    assert all((p.stat().st_ino, p.stat().st_mtime_ns) != old for p, old in before.items()), "images not rewritten"


def test_reports_progress_in_images(tmp_path: Path) -> None:
    events: list[Progress] = []
    generate_demo_dataset(tmp_path / "p", patients_per_class=1, images_per_patient=9, on_progress=events.append)
    assert events and all(e.stage == "demo data" and e.unit == "images" and e.total == 18 for e in events)
    assert [e.done for e in events] == sorted(e.done for e in events) and events[-1].done == 18 and len(events) >= 2


def test_cancel_stops_and_a_rerun_completes(tmp_path: Path) -> None:
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        generate_demo_dataset(tmp_path / "x", patients_per_class=1, images_per_patient=2, cancel=token)
    assert "status: incomplete" in (tmp_path / "x" / DEMO_MARKER).read_text(encoding="utf-8")
    assert not _pngs(tmp_path / "x")
    generate_demo_dataset(tmp_path / "x", patients_per_class=1, images_per_patient=2)
    assert len(_pngs(tmp_path / "x")) == 4


def _class_stats(demo: Path, folder: str) -> tuple[np.ndarray, np.ndarray]:
    """Per image: mean grey level, and the share of haematoxylin-coloured pixels (dark red channel, blue
    above green: purple, not pink or white)."""
    means, nuclear = [], []
    for path in sorted((demo / folder).glob("*.png")):
        rgb = _pixels(path)
        means.append(rgb.mean())
        nuclear.append(((rgb[..., 0] < 150) & (rgb[..., 2] > rgb[..., 1] + 20)).mean())
    return np.array(means), np.array(nuclear)


def test_classes_differ_in_darkness_and_nuclear_area_on_average(demo: Path) -> None:
    benign_mean, benign_nuclear = _class_stats(demo, "benign")
    malignant_mean, malignant_nuclear = _class_stats(demo, "malignant")
    assert malignant_mean.mean() < benign_mean.mean() - 20
    assert malignant_nuclear.mean() > 2 * benign_nuclear.mean()
    assert 0.02 < benign_nuclear.mean() < 0.3 and malignant_nuclear.mean() > 0.2


def test_classes_overlap_so_no_single_cue_separates_them(demo: Path) -> None:
    """Stain strength, hyperplasia and low-grade carcinoma make some benign images darker and more nuclear
    than some malignant ones: a model has to learn morphology, and cannot be perfect."""
    benign_mean, benign_nuclear = _class_stats(demo, "benign")
    malignant_mean, malignant_nuclear = _class_stats(demo, "malignant")
    assert benign_mean.min() < malignant_mean.max()
    assert benign_nuclear.max() > malignant_nuclear.min()


def test_patients_differ_in_stain_and_focus(demo: Path) -> None:
    """Each patient's lab and scanner differ (stain hue and strength), and focus varies between fields."""
    colour: dict[str, list[np.ndarray]] = {}
    sharpness = []
    for path in _pngs(demo):
        rgb = _pixels(path)
        colour.setdefault(NAME.match(path.name).group(4), []).append(rgb.reshape(-1, 3).mean(0))
        grey = rgb.mean(-1)
        sharpness.append(np.abs(np.diff(grey, axis=1)).mean())
    per_patient = np.array([np.mean(v, axis=0) for v in colour.values()])
    assert per_patient.std(axis=0).max() > 8  # grey levels between patients' mean colours
    assert max(sharpness) > 2 * min(sharpness)
