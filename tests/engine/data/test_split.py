"""Patient-level, stratified, seeded train/val/test splits and their split.csv round trip."""

from __future__ import annotations

import csv
import logging
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.errors import DataError
from engine.data.records import Dataset, ImageRecord
from engine.data.split import (
    LEAK_WARNING,
    SPLITS,
    Split,
    load_split,
    make_split,
    save_split,
    split_hash,
    split_summary,
)


def make_dataset(
    patients_per_class=(8, 6), images_per_patient=3, *, root=Path("/data"), with_patients=True, uneven=False
) -> Dataset:
    records = []
    for label, n_patients in zip(("benign", "malignant"), patients_per_class):
        for p in range(n_patients):
            n_images = images_per_patient + (p % 3 if uneven else 0)
            for i in range(n_images):
                pid = f"{label[0]}{p:03d}"
                records.append(ImageRecord(root / label / f"{pid}_{i}.png", label, pid if with_patients else None))
    return Dataset(root, "class-folders", records, ("benign", "malignant"))


def patients_by_split(ds: Dataset, split: Split) -> dict[str, set[str]]:
    out: dict[str, set[str]] = defaultdict(set)
    for r, s in zip(ds.records, split.assignment):
        out[s].add(r.patient_id)
    return out


def assert_patient_level(ds: Dataset, split: Split) -> None:
    seen: dict[str, set[str]] = defaultdict(set)
    for r, s in zip(ds.records, split.assignment):
        seen[r.patient_id].add(s)
    leaked = {p: s for p, s in seen.items() if len(s) > 1}
    assert not leaked, f"patients in several splits: {leaked}"


def test_basic_patient_split():
    ds = make_dataset()
    split = make_split(ds, seed=0)
    assert split.level == "patient"
    assert split.seed == 0
    assert split.ratios == (0.7, 0.15, 0.15)
    assert len(split.assignment) == len(ds.records)
    assert set(split.assignment) <= set(SPLITS)
    assert sorted(i for name in SPLITS for i in split.indices(name)) == list(range(len(ds.records)))
    assert_patient_level(ds, split)
    for name in SPLITS:
        assert {ds.records[i].label for i in split.indices(name)} == {"benign", "malignant"}, name


def test_split_sizes_follow_ratios_per_class():
    ds = make_dataset((20, 20), 1)
    split = make_split(ds, ratios=(0.6, 0.2, 0.2), seed=3)
    for label in ("benign", "malignant"):
        counts = {name: sum(ds.records[i].label == label for i in split.indices(name)) for name in SPLITS}
        assert counts == {"train": 12, "val": 4, "test": 4}


@pytest.mark.parametrize("seed", [0, 1, 7, 123])
@pytest.mark.parametrize("ratios", [(0.7, 0.15, 0.15), (0.8, 0.1, 0.1), (0.5, 0.0, 0.5), (0.34, 0.33, 0.33)])
def test_no_patient_in_two_splits(seed, ratios):
    ds = make_dataset((9, 5), 2, uneven=True)
    split = make_split(ds, ratios=ratios, seed=seed)
    assert_patient_level(ds, split)
    for name in ("train", "test"):
        assert {ds.records[i].label for i in split.indices(name)} == {"benign", "malignant"}
    if ratios[1] == 0:
        assert split.indices("val") == []


@settings(max_examples=60, deadline=None)
@given(
    n_benign=st.integers(3, 15),
    n_malignant=st.integers(3, 15),
    images=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
    ratios=st.sampled_from([(0.7, 0.15, 0.15), (0.6, 0.2, 0.2), (0.8, 0.0, 0.2), (0.5, 0.25, 0.25)]),
)
def test_property_patient_level_and_stratified(n_benign, n_malignant, images, seed, ratios):
    ds = make_dataset((n_benign, n_malignant), images, uneven=True)
    split = make_split(ds, ratios=ratios, seed=seed)
    assert_patient_level(ds, split)
    for name in ("train", "test"):
        assert {ds.records[i].label for i in split.indices(name)} == {"benign", "malignant"}


def test_mixed_label_patient_stays_in_one_split():
    ds = make_dataset((5, 5), 2)
    # one patient with images of both classes
    extra = [
        ImageRecord(Path("/data/mixed") / f"m{i}.png", "malignant" if i == 0 else "benign", "mixed") for i in range(3)
    ]
    ds = Dataset(ds.root, ds.kind, ds.records + extra, ds.classes)
    for seed in range(5):
        split = make_split(ds, seed=seed)
        assert_patient_level(ds, split)


def test_deterministic_by_seed():
    ds = make_dataset((12, 12), 2)
    a, b = make_split(ds, seed=42), make_split(ds, seed=42)
    assert a == b
    assert split_hash(ds, a) == split_hash(ds, b)
    others = {make_split(ds, seed=s).assignment for s in range(1, 6)}
    assert any(o != a.assignment for o in others)
    different = next(s for s in range(1, 6) if make_split(ds, seed=s).assignment != a.assignment)
    assert split_hash(ds, make_split(ds, seed=different)) != split_hash(ds, a)


def test_independent_of_record_order_for_the_same_patients():
    ds = make_dataset((10, 10), 2)
    rev = Dataset(ds.root, ds.kind, list(reversed(ds.records)), ds.classes)
    a, b = make_split(ds, seed=5), make_split(rev, seed=5)
    assert patients_by_split(ds, a) == patients_by_split(rev, b)
    assert split_hash(ds, a) == split_hash(rev, b)


def test_image_level_split_warns_about_leaks(caplog):
    ds = make_dataset((4, 4), 5)
    with caplog.at_level(logging.WARNING, logger="engine.data.split"):
        split = make_split(ds, seed=0, level="image")
    assert split.level == "image"
    assert any("image-level split" in rec.getMessage() and rec.levelno == logging.WARNING for rec in caplog.records)
    # with 5 images per patient, some patient is spread over several splits at image level
    seen: dict[str, set[str]] = defaultdict(set)
    for r, s in zip(ds.records, split.assignment):
        seen[r.patient_id].add(s)
    assert any(len(s) > 1 for s in seen.values())
    assert split_summary(ds, split)["warning"] == LEAK_WARNING


def test_patient_split_does_not_warn(caplog):
    ds = make_dataset()
    with caplog.at_level(logging.WARNING, logger="engine.data.split"):
        make_split(ds, seed=0)
    assert not any("image-level" in rec.getMessage() for rec in caplog.records)
    assert "warning" not in split_summary(ds, make_split(ds))


def test_missing_patient_ids_need_image_level():
    ds = make_dataset(with_patients=False)
    with pytest.raises(DataError, match="--split-level image") as info:
        make_split(ds)
    assert "no patient id" in str(info.value)
    split = make_split(ds, level="image")  # only when asked
    assert len(split.assignment) == len(ds.records)


def test_unknown_level():
    with pytest.raises(DataError, match="split level"):
        make_split(make_dataset(), level="slide")


def test_too_few_patients_per_class():
    ds = make_dataset((8, 1), 3)
    with pytest.raises(DataError, match="class only") as info:
        make_split(ds)
    assert "malignant" in str(info.value)


@pytest.mark.parametrize(
    "ratios",
    [
        (0.5, 0.5),
        (0.7, 0.2, 0.2),
        (0.0, 0.5, 0.5),
        (0.5, 0.5, 0.0),
        (1.2, -0.1, -0.1),
        (0.7, 0.15, 0.15, 0.0),
        (float("nan"),) * 3,
        ("a", 0.5, 0.5),
        None,
    ],
)
def test_bad_ratios(ratios):
    with pytest.raises(DataError, match="ratios"):
        make_split(make_dataset(), ratios=ratios)


def test_save_and_load_round_trip(tmp_path):
    ds = make_dataset((7, 6), 2, uneven=True)
    split = make_split(ds, ratios=(0.6, 0.2, 0.2), seed=9)
    path = tmp_path / "run" / "split.csv"
    save_split(path, ds, split)
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert reader.fieldnames[:4] == ["path", "label", "patient_id", "split"]
    assert len(rows) == len(ds.records)
    assert [r["split"] for r in rows] == list(split.assignment)
    assert [r["patient_id"] for r in rows] == [r.patient_id for r in ds.records]

    loaded = load_split(path, ds, seed=9)
    assert loaded.assignment == split.assignment
    assert split_hash(ds, loaded) == split_hash(ds, split)
    assert split_summary(ds, loaded)["hash"] == split_summary(ds, split)["hash"]


def test_load_split_with_reordered_dataset(tmp_path):
    ds = make_dataset()
    split = make_split(ds, seed=1)
    save_split(tmp_path / "split.csv", ds, split)
    rev = Dataset(ds.root, ds.kind, list(reversed(ds.records)), ds.classes)
    loaded = load_split(tmp_path / "split.csv", rev)
    assert loaded.assignment == tuple(reversed(split.assignment))
    assert split_hash(rev, loaded) == split_hash(ds, split)


def test_load_split_mismatching_dataset(tmp_path):
    ds = make_dataset()
    save_split(tmp_path / "split.csv", ds, make_split(ds))
    bigger = make_dataset((9, 6))  # one record not in the file
    with pytest.raises(DataError, match="does not match"):
        load_split(tmp_path / "split.csv", bigger)
    relabelled = Dataset(ds.root, ds.kind, [replace(ds.records[0], label="malignant"), *ds.records[1:]], ds.classes)
    with pytest.raises(DataError, match="does not match"):
        load_split(tmp_path / "split.csv", relabelled)
    moved = make_dataset(root=Path("/elsewhere"))
    with pytest.raises(DataError, match="make a new split"):
        load_split(tmp_path / "split.csv", moved)


def test_load_split_bad_files(tmp_path):
    ds = make_dataset()
    with pytest.raises(DataError, match="cannot read split file"):
        load_split(tmp_path / "missing.csv", ds)
    no_split = tmp_path / "nosplit.csv"
    no_split.write_text("path,label\n" + "".join(f"{r.path},{r.label}\n" for r in ds.records))
    with pytest.raises(DataError, match=r"missing columns \['split'\]"):
        load_split(no_split, ds)
    bad_value = tmp_path / "badvalue.csv"
    bad_value.write_text("path,label,split\n" + "".join(f"{r.path},{r.label},holdout\n" for r in ds.records))
    with pytest.raises(DataError, match="does not match"):
        load_split(bad_value, ds)


def test_split_summary_counts():
    ds = make_dataset((10, 10), 2)
    split = make_split(ds, seed=0)
    s = split_summary(ds, split)
    assert sum(s[name]["n_images"] for name in SPLITS) == len(ds.records)
    assert sum(s[name]["n_patients"] for name in SPLITS) == 20
    for name in SPLITS:
        assert sum(s[name]["per_class"].values()) == s[name]["n_images"]


def _image_level_file(tmp_path: Path) -> tuple[Dataset, Path]:
    """A split.csv made at image level, so that patients land in several splits."""
    ds = make_dataset((8, 8), 6)
    split = make_split(ds, seed=0, level="image")
    assert any(len(s) > 1 for s in _splits_of_patients(ds, split).values())
    save_split(tmp_path / "split.csv", ds, split)
    return ds, tmp_path / "split.csv"


def _splits_of_patients(ds: Dataset, split: Split) -> dict[str, set[str]]:
    seen: dict[str, set[str]] = defaultdict(set)
    for r, s in zip(ds.records, split.assignment):
        seen[r.patient_id].add(s)
    return seen


def test_load_split_refuses_an_image_level_file_as_patient_level(tmp_path):
    ds, path = _image_level_file(tmp_path)
    leak = r"puts patient \S+ in (both|all of) train.* test .*image-level split.*--split-level image"
    with pytest.raises(DataError, match=leak):
        load_split(path, ds)  # the default level is patient
    with pytest.raises(DataError, match="image-level split"):
        load_split(path, ds, level="patient")


def test_load_split_records_an_image_level_file_as_image_level(tmp_path, caplog):
    ds, path = _image_level_file(tmp_path)
    with caplog.at_level(logging.WARNING, logger="engine.data.split"):
        loaded = load_split(path, ds, level="image")
    assert loaded.level == "image" and LEAK_WARNING in caplog.text
    summary = split_summary(ds, loaded)
    assert summary["level"] == "image" and summary["warning"] == LEAK_WARNING


def test_load_split_patient_level_file_stays_patient_level(tmp_path):
    ds = make_dataset((8, 8), 3)
    save_split(tmp_path / "split.csv", ds, make_split(ds, seed=2))
    loaded = load_split(tmp_path / "split.csv", ds)
    assert loaded.level == "patient"
    assert_patient_level(ds, loaded)


def test_load_split_without_patient_ids_is_not_patient_level(tmp_path):
    ds = make_dataset(with_patients=False)
    save_split(tmp_path / "split.csv", ds, make_split(ds, level="image"))
    with pytest.raises(DataError, match="no patient id.*--split-level image"):
        load_split(tmp_path / "split.csv", ds)
    assert load_split(tmp_path / "split.csv", ds, level="image").level == "image"


@pytest.mark.parametrize("name", ["train", "test"])
def test_load_split_needs_both_classes_in_train_and_test(tmp_path, name):
    ds = make_dataset((6, 6), 2)
    other = "test" if name == "train" else "train"
    rows = []
    for r in ds.records:  # patient-level, benign patients in train and test, every malignant one outside `name`
        benign_split = "train" if int(r.patient_id[1:]) % 2 else "test"
        rows.append(f"{r.path},{r.label},{r.patient_id},{benign_split if r.label == 'benign' else other}\n")
    (tmp_path / "split.csv").write_text("path,label,patient_id,split\n" + "".join(rows))
    with pytest.raises(DataError, match=rf"the {name} split .*no malignant image.*make a new split"):
        load_split(tmp_path / "split.csv", ds)


def test_prepare_data_records_the_true_level_of_a_saved_split(tmp_path):
    """--split-file and a resumed run: an image-level split.csv is refused at --split-level patient and kept,
    recorded as image-level, at --split-level image (the run's own level when it is resumed)."""
    from engine.core.config import DataConfig, ExperimentConfig
    from engine.data.prepare import prepare_data
    from engine.runs.folder import RunFolder
    from tests.engine.conftest import SIZE, TRAIN, _write_folder

    folder = _write_folder(tmp_path / "data")
    image_cfg = DataConfig(data=str(folder), split_level="image")
    made = prepare_data(image_cfg, SIZE)
    leaks = any(len(s) > 1 for s in _splits_of_patients(made.dataset, made.split).values())
    assert made.split.level == "image" and leaks
    save_split(tmp_path / "split.csv", made.dataset, made.split)
    with pytest.raises(DataError, match="image-level split"):
        prepare_data(DataConfig(data=str(folder), split_file=str(tmp_path / "split.csv")), SIZE)
    again = prepare_data(replace(image_cfg, split_file=str(tmp_path / "split.csv")), SIZE)
    assert again.split.level == "image" and split_summary(again.dataset, again.split)["level"] == "image"

    run, cfg = tmp_path / "run", ExperimentConfig(image_cfg, TRAIN)
    RunFolder.prepare(run, cfg).release()
    save_split(run / "split.csv", made.dataset, made.split)
    resuming = RunFolder.check(run, cfg, resume=True)
    resumed = prepare_data(cfg.data, SIZE, split_file=RunFolder.saved_split(run, resuming))
    assert resumed.split.level == "image" and split_hash(resumed.dataset, resumed.split) == split_hash(
        made.dataset, made.split
    )
