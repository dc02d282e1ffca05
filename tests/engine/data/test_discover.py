"""Dataset discovery: BreakHis trees, class folders, CSV manifests, class ordering, filters and errors."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

from engine.core.errors import DataError
from engine.data.discover import discover


def _png(path: Path, color=(200, 100, 150), size=(6, 4)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


OFFICIAL = Path("BreaKHis_v1/histology_slides/breast")
BREAKHIS_FILES = {
    # file name -> sub-path of its folder in the official tree
    "SOB_B_A-14-22549AB-40-001.png": "benign/SOB/adenosis/SOB_B_A_14-22549AB/40X",
    "SOB_B_A-14-22549AB-100-002.png": "benign/SOB/adenosis/SOB_B_A_14-22549AB/100X",
    "SOB_B_A-14-22549CD-100-003.png": "benign/SOB/adenosis/SOB_B_A_14-22549CD/100X",
    "SOB_B_F-14-9133-40-001.png": "benign/SOB/fibroadenoma/SOB_B_F_14-9133/40X",
    "SOB_M_DC-14-2523-40-010.png": "malignant/SOB/ductal_carcinoma/SOB_M_DC_14-2523/40X",
    "SOB_M_DC-14-2523-400-011.png": "malignant/SOB/ductal_carcinoma/SOB_M_DC_14-2523/400X",
    "SOB_M_LC-14-12204-200-001.png": "malignant/SOB/lobular_carcinoma/SOB_M_LC_14-12204/200X",
}


@pytest.fixture
def official_tree(tmp_path) -> Path:
    for name, folder in BREAKHIS_FILES.items():
        _png(tmp_path / OFFICIAL / folder / name)
    return tmp_path


@pytest.fixture
def class_folders(tmp_path) -> Path:
    root = tmp_path / "cf"
    for i in range(3):
        _png(root / "normal" / f"n{i}.png")
        _png(root / "tumor" / f"t{i}.jpg")
    return root


# --- BreakHis layout ------------------------------------------------------------------------------------------


def test_official_breakhis_tree(official_tree):
    ds = discover(official_tree)
    assert ds.kind == "breakhis"
    assert ds.classes == ("benign", "malignant")
    assert ds.positive_class == "malignant"
    assert len(ds.records) == len(BREAKHIS_FILES)
    assert ds.skipped == []
    by_name = {r.path.name: r for r in ds.records}
    assert set(by_name) == set(BREAKHIS_FILES)
    r = by_name["SOB_M_DC-14-2523-400-011.png"]
    assert (r.label, r.patient_id, r.magnification, r.tumor_type) == (
        "malignant",
        "14-2523",
        "400X",
        "ductal_carcinoma",
    )
    # AB and CD slides of one patient are one patient
    assert by_name["SOB_B_A-14-22549AB-40-001.png"].patient_id == "14-22549"
    assert by_name["SOB_B_A-14-22549CD-100-003.png"].patient_id == "14-22549"
    assert Counter(r.label for r in ds.records) == {"benign": 4, "malignant": 3}
    assert ds.labels().count(1) == 3


def test_breakhis_names_in_flat_class_folders(tmp_path):
    for name in BREAKHIS_FILES:
        _png(tmp_path / ("benign" if "_B_" in name else "malignant") / name)
    ds = discover(tmp_path)
    assert ds.kind == "breakhis"
    assert len(ds.records) == len(BREAKHIS_FILES)
    assert {r.patient_id for r in ds.records} == {"14-22549", "14-9133", "14-2523", "14-12204"}


def test_breakhis_names_found_at_any_depth_and_with_upper_case_suffix(tmp_path):
    _png(tmp_path / "a" / "b" / "c" / "SOB_B_F-14-9133-40-001.PNG")
    _png(tmp_path / "SOB_M_DC-14-2523-40-010.png")
    ds = discover(tmp_path)
    assert ds.kind == "breakhis"
    assert sorted(r.label for r in ds.records) == ["benign", "malignant"]


def test_non_breakhis_images_in_a_breakhis_folder_are_skipped_with_a_reason(official_tree):
    stray = _png(official_tree / OFFICIAL / "benign" / "thumbnail.png")
    jpg = _png(official_tree / OFFICIAL / "malignant" / "SOB_M_DC-14-2523-40-099.jpg")
    (official_tree / "README.txt").write_text("not an image")
    ds = discover(official_tree)
    assert len(ds.records) == len(BREAKHIS_FILES)
    skipped = {s.path: s.reason for s in ds.skipped}
    assert set(skipped) == {stray, jpg}
    assert all("BreakHis name" in reason for reason in skipped.values())
    assert "thumbnail.png" in str(ds.summary()["skipped"])


def test_hidden_files_are_ignored(official_tree):
    _png(official_tree / OFFICIAL / "benign" / "._SOB_B_F-14-9133-40-001.png")
    (official_tree / ".DS_Store").write_bytes(b"\0\1")
    ds = discover(official_tree)
    assert len(ds.records) == len(BREAKHIS_FILES)
    assert ds.skipped == []


# --- class folders --------------------------------------------------------------------------------------------


def test_class_folders_without_patients(class_folders):
    ds = discover(class_folders, positive_class="tumor")
    assert ds.kind == "class-folders"
    assert ds.classes == ("normal", "tumor")
    assert len(ds.records) == 6
    assert all(r.patient_id is None for r in ds.records)
    assert all(r.magnification is None for r in ds.records)
    assert {r.label for r in ds.records if r.path.suffix == ".jpg"} == {"tumor"}


def test_class_folders_with_patient_subfolders(tmp_path):
    for cls, patients in (("benign", ("p1", "p2")), ("malignant", ("p3",))):
        for p in patients:
            for i in range(2):
                _png(tmp_path / cls / p / f"img{i}.png")
    _png(tmp_path / "malignant" / "p3" / "deeper" / "x.tif")  # the first sub-folder names the patient
    ds = discover(tmp_path)
    assert ds.kind == "class-folders"
    pairs = Counter((r.label, r.patient_id) for r in ds.records)
    assert pairs == {("benign", "p1"): 2, ("benign", "p2"): 2, ("malignant", "p3"): 3}


def test_class_folders_image_in_root_is_skipped(class_folders):
    stray = _png(class_folders / "loose.png")
    ds = discover(class_folders, positive_class="tumor")
    assert len(ds.records) == 6
    assert [s.path for s in ds.skipped] == [stray]
    assert "root folder" in ds.skipped[0].reason


def test_non_image_files_are_ignored_in_class_folders(class_folders):
    (class_folders / "normal" / "notes.txt").write_text("x")
    (class_folders / "labels.json").write_text("{}")
    ds = discover(class_folders, positive_class="tumor")
    assert len(ds.records) == 6
    assert ds.skipped == []


# --- positive class -------------------------------------------------------------------------------------------


def test_positive_class_decides_the_order(class_folders):
    ds = discover(class_folders, positive_class="normal")
    assert ds.classes == ("tumor", "normal")
    assert ds.positive_class == "normal"
    labels = ds.labels()
    assert all(lab == (1 if r.label == "normal" else 0) for r, lab in zip(ds.records, labels))


def test_positive_class_breakhis_override(official_tree):
    ds = discover(official_tree, positive_class="benign")
    assert ds.classes == ("malignant", "benign")


def test_wrong_positive_class_names_the_classes(class_folders):
    with pytest.raises(DataError) as info:
        discover(class_folders)  # default "malignant" is not a class here
    msg = str(info.value)
    assert "'malignant'" in msg and "normal" in msg and "tumor" in msg
    assert "--positive-class" in msg


# --- magnification and patient-regex ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["40", "40x", "40X"])
def test_magnification_filter(official_tree, value):
    ds = discover(official_tree, magnification=value)
    assert {r.magnification for r in ds.records} == {"40X"}
    assert sorted(r.path.name for r in ds.records) == sorted(n for n in BREAKHIS_FILES if "-40-" in n)


def test_magnification_filter_without_a_match_lists_what_was_found(official_tree):
    with pytest.raises(DataError) as info:
        discover(official_tree, magnification="1000")
    msg = str(info.value)
    assert "1000X" in msg
    for mag in ("40X", "100X", "200X", "400X"):
        assert mag in msg


def test_magnification_filter_on_data_without_magnification(class_folders):
    with pytest.raises(DataError, match="unknown"):
        discover(class_folders, positive_class="tumor", magnification="40X")


def test_magnification_filter_rejects_nonsense(official_tree):
    with pytest.raises(DataError, match="magnification 'high' is not one of 40X"):
        discover(official_tree, magnification="high")


def test_magnification_filter_leaving_one_class(official_tree):
    # only a malignant image at 200X
    with pytest.raises(DataError, match="only one class"):
        discover(official_tree, magnification="200X")


def test_patient_regex_with_group(tmp_path):
    for cls in ("a", "b"):
        for p in (1, 2):
            for i in range(2):
                _png(tmp_path / cls / f"pat{cls}{p}_tile{i}.png")
    _png(tmp_path / "a" / "unnamed.png")
    ds = discover(tmp_path, positive_class="b", patient_regex=r"^(pat\w\d)_")
    assert Counter(r.patient_id for r in ds.records) == {"pata1": 2, "pata2": 2, "patb1": 2, "patb2": 2}
    assert [s.path.name for s in ds.skipped] == ["unnamed.png"]
    assert "does not match the patient id pattern" in ds.skipped[0].reason


def test_patient_regex_without_group_uses_whole_match(tmp_path):
    _png(tmp_path / "a" / "9227_idx5_x1_y1_class0.png")
    _png(tmp_path / "b" / "8863_idx5_x1_y1_class1.png")
    ds = discover(tmp_path, positive_class="b", patient_regex=r"^\d+")
    assert sorted(r.patient_id for r in ds.records) == ["8863", "9227"]


def test_patient_regex_overrides_breakhis_patients(official_tree):
    ds = discover(official_tree, patient_regex=r"SOB_\w_\w+-\d+-(\d+\w*)-")
    assert "22549AB" in {r.patient_id for r in ds.records}


def test_invalid_patient_regex(class_folders):
    with pytest.raises(DataError, match="regular expression"):
        discover(class_folders, positive_class="tumor", patient_regex="(unclosed")


# --- bad inputs -----------------------------------------------------------------------------------------------


def test_nonexistent_path(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        discover(tmp_path / "nowhere")


def test_empty_folder(tmp_path):
    with pytest.raises(DataError, match="no images") as info:
        discover(tmp_path)
    assert "class folders" in str(info.value) and "CSV" in str(info.value)


def test_folder_with_only_text(tmp_path):
    (tmp_path / "benign").mkdir()
    (tmp_path / "benign" / "readme.txt").write_text("hello")
    with pytest.raises(DataError, match="no images") as info:
        discover(tmp_path)
    assert "1 other files" in str(info.value)


def test_one_class_only(tmp_path):
    for i in range(3):
        _png(tmp_path / "benign" / f"{i}.png")
    with pytest.raises(DataError, match="only one class") as info:
        discover(tmp_path, positive_class="benign")
    assert "'benign'" in str(info.value) and "3 images" in str(info.value)


def test_three_classes(tmp_path):
    for cls in ("a", "b", "c"):
        _png(tmp_path / cls / "x.png")
    with pytest.raises(DataError, match="3 classes") as info:
        discover(tmp_path, positive_class="b")
    assert "exactly two" in str(info.value)


def test_non_csv_file(tmp_path):
    image = _png(tmp_path / "one.png")
    with pytest.raises(DataError, match="not a CSV manifest"):
        discover(image)


def test_all_csv_rows_missing(tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\ngone1.png,a\ngone2.png,b\n")
    with pytest.raises(DataError, match="no usable images") as info:
        discover(manifest, positive_class="b")
    assert "2 skipped" in str(info.value)


# --- summary --------------------------------------------------------------------------------------------------


def test_summary_counts(official_tree):
    _png(official_tree / OFFICIAL / "benign" / "stray.png")
    s = discover(official_tree).summary()
    assert s["kind"] == "breakhis"
    assert s["classes"] == ["benign", "malignant"] and s["positive_class"] == "malignant"
    assert s["n_images"] == 7
    assert s["per_class"] == {"benign": 4, "malignant": 3}
    assert s["n_patients"] == 4
    assert s["patients_per_class"] == {"benign": 2, "malignant": 2}
    assert s["per_magnification"] == {"100X": 2, "200X": 1, "400X": 1, "40X": 3}
    assert s["per_tumor_type"] == {"adenosis": 3, "ductal_carcinoma": 2, "fibroadenoma": 1, "lobular_carcinoma": 1}
    assert s["images_per_patient"] == {"14-12204": 1, "14-22549": 3, "14-2523": 2, "14-9133": 1}
    assert len(s["skipped"]) == 1 and s["skipped"][0]["path"].endswith("stray.png")
    assert s["synthetic"] is False


# --- the real shared data ----------------------------------------------------------------------------------------


def test_real_breakhis_subset(shared_data):
    ds = discover(shared_data / "breakhis_subset")
    assert ds.kind == "breakhis"
    assert len(ds.records) == 30
    assert ds.skipped == []
    s = ds.summary()
    assert s["per_class"] == {"benign": 19, "malignant": 11}
    assert s["n_patients"] == 14  # 22549AB and 22549CD are one patient
    assert s["patients_per_class"] == {"benign": 6, "malignant": 8}
    assert s["images_per_patient"]["14-22549"] == 10
    assert s["per_magnification"] == {"100X": 9, "200X": 4, "400X": 8, "40X": 9}


def test_real_idc_manifest(shared_data):
    ds = discover(shared_data / "idc_subset" / "MANIFEST.csv", positive_class="idc")
    assert ds.kind == "csv"
    assert ds.classes == ("non_idc", "idc")
    assert len(ds.records) == 2000
    assert ds.skipped == []
    s = ds.summary()
    assert s["per_class"] == {"non_idc": 1000, "idc": 1000}
    assert s["n_patients"] == 185
    assert s["patients_per_class"] == {"non_idc": 184, "idc": 180}


def test_no_positive_class_takes_malignant_or_the_second_class(tmp_path):
    from PIL import Image

    for name in ("normal", "tumour"):
        (tmp_path / name).mkdir()
        for i in range(2):
            Image.new("RGB", (8, 8)).save(tmp_path / name / f"{i}.png")
    assert discover(tmp_path, positive_class=None).classes == ("normal", "tumour")
    assert discover(tmp_path, positive_class="normal").classes == ("tumour", "normal")
