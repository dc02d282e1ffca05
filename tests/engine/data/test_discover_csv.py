"""Dataset discovery from a CSV manifest: path,label[,patient_id] with extra columns, a BOM, missing files and
labels, bad magnifications and files that are not CSV text."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.core.errors import DataError
from engine.data.discover import discover
from tests.engine.data.test_discover import _png

# --- CSV manifests --------------------------------------------------------------------------------------------


def _manifest_dataset(tmp_path) -> Path:
    for i in range(2):
        _png(tmp_path / "imgs" / f"a{i}.png")
        _png(tmp_path / "imgs" / f"b{i}.png")
    return tmp_path


def test_csv_manifest_with_patients_and_extra_columns(tmp_path):
    _manifest_dataset(tmp_path)
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "path,label,patient_id,notes,magnification,tumor_type\n"
        "imgs/a0.png,healthy,P1,whatever,40,\n"
        "imgs/a1.png, healthy ,P1,,,\n"
        "imgs/b0.png,sick,P2,x,100x,ductal_carcinoma\n"
        "imgs/b1.png,sick,,y,,\n"
    )
    ds = discover(manifest, positive_class="sick")
    assert ds.kind == "csv"
    assert ds.root == tmp_path
    assert ds.classes == ("healthy", "sick")
    by_name = {r.path.name: r for r in ds.records}
    assert by_name["a0.png"].patient_id == "P1" and by_name["a0.png"].magnification == "40X"
    assert by_name["a1.png"].label == "healthy"  # whitespace around the label is stripped
    assert by_name["b0.png"].magnification == "100X" and by_name["b0.png"].tumor_type == "ductal_carcinoma"
    assert by_name["b1.png"].patient_id is None
    assert all(r.path.is_absolute() and r.path.is_file() for r in ds.records)


def test_csv_manifest_without_patient_column_and_with_bom(tmp_path):
    _manifest_dataset(tmp_path)
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\nimgs/a0.png,0\nimgs/b0.png,1\n", encoding="utf-8-sig")
    ds = discover(manifest, positive_class="1")
    assert ds.classes == ("0", "1")
    assert [r.patient_id for r in ds.records] == [None, None]


def test_csv_missing_files_are_skipped(tmp_path):
    _manifest_dataset(tmp_path)
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\nimgs/a0.png,a\nimgs/nope.png,a\nimgs/b0.png,b\n,b\n")
    ds = discover(manifest, positive_class="b")
    assert len(ds.records) == 2
    assert len(ds.skipped) == 2
    assert any(s.path.name == "nope.png" for s in ds.skipped)
    assert all("not found" in s.reason for s in ds.skipped)


def test_csv_rows_without_a_label_are_skipped(tmp_path):
    _manifest_dataset(tmp_path)
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\nimgs/a0.png,a\nimgs/a1.png\nimgs/b1.png,\nimgs/b0.png,b\n")
    ds = discover(manifest, positive_class="b")
    assert sorted(r.path.name for r in ds.records) == ["a0.png", "b0.png"]
    assert sorted(s.path.name for s in ds.skipped) == ["a1.png", "b1.png"]
    assert all("label" in s.reason for s in ds.skipped)


def test_csv_bad_magnification_is_a_data_error(tmp_path):
    _manifest_dataset(tmp_path)
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label,magnification\nimgs/a0.png,a,high\nimgs/b0.png,b,40\n")
    with pytest.raises(DataError, match="high") as info:
        discover(manifest, positive_class="b")
    assert "40X" in str(info.value)


def test_csv_missing_columns(tmp_path):
    _manifest_dataset(tmp_path)
    manifest = tmp_path / "m.csv"
    manifest.write_text("file,class\nimgs/a0.png,a\n")
    with pytest.raises(DataError, match=r"path,label") as info:
        discover(manifest)
    assert "class" in str(info.value) and "file" in str(info.value)


def test_empty_csv_and_header_only_csv(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="path,label"):
        discover(empty)
    header_only = tmp_path / "header.csv"
    header_only.write_text("path,label,patient_id\n")
    with pytest.raises(DataError, match="no usable images"):
        discover(header_only)


def test_csv_that_is_not_text(tmp_path):
    bad = tmp_path / "binary.csv"
    bad.write_bytes(b"\xff\xfe\x00\x81\x00garbage\x00")
    with pytest.raises(DataError, match="binary.csv"):
        discover(bad)
