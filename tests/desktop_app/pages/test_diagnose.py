"""Diagnose page: the chosen ONNX model described, a batch predicted like the engine does, unreadable files
listed, the selected image shown with its verdict, CSV with sha256 and app version, drop, cancel."""

from __future__ import annotations

import csv
import hashlib
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QFileDialog

import engine
from desktop_app.errors import GUI_OPTIONS
from desktop_app.pages.diagnose import DiagnosePage
from engine import api
from tests.desktop_app.conftest import wait_for_tasks


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def page(qtbot, window, tiny_run) -> DiagnosePage:
    """The Diagnose page after opening the tiny run (its Model B is chosen), model read."""
    window.controller.open_run(tiny_run)
    window.show_page("Diagnose")
    wait_for_tasks(qtbot, window)
    return window.page("DiagnosePage")


@pytest.fixture
def images(tiny_demo, tmp_path) -> tuple[list[Path], Path, Path]:
    """Three loose image files, a folder of four more, and a corrupt x.png (junk bytes)."""
    files = sorted(tiny_demo.rglob("*.png"))
    folder = tmp_path / "folder"
    folder.mkdir()
    for f in files[-4:]:
        shutil.copy(f, folder / f.name)
    bad = tmp_path / "x.png"
    bad.write_bytes(b"this is not a PNG \x00\x01\x02" * 10)
    return [*files[:3], bad], folder, bad


def add_like_a_user(page, monkeypatch, files: list[Path], folder: Path) -> None:
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", lambda *a, **k: ([str(f) for f in files], ""))
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(folder))
    page.add_images_button.click()
    page.add_folder_button.click()


def test_model_box_describes_the_runs_model(page, tiny_run):
    box, model = page.model_box, tiny_run / "model_b.onnx"
    digest = sha256(model)
    assert digest[:16] in box.values["sha256"].text() and digest in box.values["sha256"].toolTip()
    assert "model_b.onnx" in box.values["file"].text()
    assert (
        not box.synthetic.isHidden()
        and "synthetic" in box.synthetic.text()
        and "not for diagnosis" in (box.synthetic.text())
    )
    assert "(positive)" in box.values["classes"].text() and "small_cnn" in box.values["arch"].text()
    assert "32×32" in box.values["input"].text()
    assert "adversarial" in box.values["trained"].text() and "/255" in box.values["trained"].text()
    assert box.values["provider"].text().startswith(("CPUExecutionProvider", "CUDAExecutionProvider"))
    assert [box.picker.itemData(i) for i in range(box.picker.count())] == [
        str(tiny_run / "model_a.onnx"),
        str(model),
        str(tiny_run / "model_c.onnx"),  # Model C: on-the-fly adversarial training
    ]
    assert box.picker.currentData() == str(model)
    assert "not a medical device" in page.disclaimer.text() and "pathologist" in page.disclaimer.text()
    assert not page.run_button.isEnabled()  # no images yet


def test_picking_model_a_reads_it(qtbot, window, page, tiny_run):
    box = page.model_box
    index = box.picker.findData(str(tiny_run / "model_a.onnx"))
    box.picker.setCurrentIndex(index)
    box.picker.activated.emit(index)
    wait_for_tasks(qtbot, window)
    assert window.ctx.state.onnx_path == tiny_run / "model_a.onnx"
    assert sha256(tiny_run / "model_a.onnx")[:16] in box.values["sha256"].text()
    assert box.values["trained"].text().startswith("clean")


def test_a_page_made_after_the_run_was_opened_shows_its_model(qtbot, window, page, tiny_run):
    late = DiagnosePage(window.ctx)
    qtbot.addWidget(late)
    wait_for_tasks(qtbot, window)
    assert sha256(tiny_run / "model_b.onnx")[:16] in late.model_box.values["sha256"].text()


def test_batch_matches_the_engine_and_lists_the_corrupt_file(qtbot, window, page, images, tiny_run, monkeypatch):
    files, folder, bad = images
    add_like_a_user(page, monkeypatch, files, folder)
    assert page.inputs.paths() == [*files, folder] and page.run_button.isEnabled()
    qtbot.mouseClick(page.run_button, Qt.MouseButton.LeftButton)
    wait_for_tasks(qtbot, window)
    expected = {r["path"]: r for r in api.predict_files(tiny_run / "model_b.onnx", [*files, folder])}
    table = page.table
    assert table.rowCount() == 8 == len(expected)
    classes = ["benign", "malignant"]
    for r in range(table.rowCount()):
        row, want = table.row_at(r), expected[table.row_at(r)["path"]]
        assert table.item(r, 0).text() == Path(row["path"]).name
        if row["path"] == str(bad):
            assert table.item(r, 1).text() == "not read" and "not an image" in table.item(r, 5).text()
            continue
        assert table.item(r, 1).text() == want["predicted"] and want["predicted"] in classes
        assert table.item(r, 2).text() == f"{want['p_malignant']:.3f}"
        assert row["p_malignant"] == pytest.approx(want["p_malignant"], abs=1e-6)
        assert 0.0 <= float(table.item(r, 3).text()) <= 1.0 and table.item(r, 5).text() == ""
        inside = 0.2 <= want["p_malignant"] <= 0.8  # the model's default review band
        assert table.item(r, 4).text() == ("uncertain" if inside else "") == want["review"]
    assert "8 image(s)" in page.summary.text() and "1 unreadable" in page.summary.text()


def test_moving_the_review_band_flags_the_rows_again(qtbot, window, page, images, tiny_run):
    """A band as wide as [0, 1] flags every call; a band of one point flags none; the rows are not predicted
    again (their probabilities stay), and the CSV carries the flags."""
    files, folder, _ = images
    page.add_inputs([*files, folder])
    page.run_prediction()
    wait_for_tasks(qtbot, window)
    before = [dict(r) for r in page.rows]
    read = [r for r in page.rows if not r["error"]]
    assert page.band.band() == page.model_info.meta.review_band
    page.band.low.setValue(0.0)
    page.band.high.setValue(1.0)
    assert all(r["review"] == "uncertain" for r in read) and f"{len(read)} uncertain" in page.summary.text()
    assert {
        page.table.item(i, 4).text() for i in range(page.table.rowCount()) if not page.table.row_at(i)["error"]
    } == {"uncertain"}
    page.band.low.setValue(0.5)
    page.band.high.setValue(0.5)
    assert all(r["review"] == "" for r in read if r["p_malignant"] != 0.5) and "uncertain" not in page.summary.text()
    assert [r["p_malignant"] for r in page.rows if not r["error"]] == [
        r["p_malignant"] for r in before if not r["error"]
    ]


def test_selected_row_shows_image_and_verdict_and_exports_csv(qtbot, window, page, images, tiny_run, tmp_path):
    files, folder, bad = images
    page.add_inputs([*files, folder])
    page.run_prediction()
    wait_for_tasks(qtbot, window)
    r = next(i for i in range(page.table.rowCount()) if not page.table.row_at(i)["error"])
    page.table.selectRow(r)
    wait_for_tasks(qtbot, window)
    row = page.table.row_at(r)
    assert page.image_view.has_image()
    assert page.verdict.text() == f"{row['predicted']} (p = {row['p_' + row['predicted']]:.2f})"
    assert "model_b.onnx" in page.details.text() and "pathologist" in page.details.text()
    bad_row = next(i for i in range(page.table.rowCount()) if page.table.row_at(i)["path"] == str(bad))
    page.table.selectRow(bad_row)
    assert not page.image_view.has_image() and page.verdict.text() == "not read"
    assert "not an image" in page.details.text()

    out = page.export_csv(tmp_path / "out.csv")
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert len(rows) == 8 and {r["path"] for r in rows} == {r["path"] for r in page.rows}
    assert {r["model_sha256"] for r in rows} == {sha256(tiny_run / "model_b.onnx")}
    assert {r["app_version"] for r in rows} == {engine.__version__}
    assert all(r["provider"] and r["time"] for r in rows) and "p_malignant" in rows[0]
    assert all(datetime.fromisoformat(r["time"]).utcoffset() is not None for r in rows)  # ISO 8601 with zone
    assert all(r["input_sha256"] == sha256(Path(r["path"])) for r in rows)  # the unreadable file's too
    assert next(r for r in rows if r["path"] == str(bad))["error"]


def test_export_dialog_writes_the_chosen_file(qtbot, window, page, images, tmp_path, monkeypatch):
    files, _, _ = images
    assert not page.export_button.isEnabled()
    page.add_inputs(files)
    page.run_prediction()
    wait_for_tasks(qtbot, window)
    target = tmp_path / "chosen.csv"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    page.export_button.click()
    assert len(list(csv.DictReader(target.open(encoding="utf-8")))) == len(files)


def mime_with(paths: list[Path]) -> QMimeData:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    return mime


def send_drag(page, mime: QMimeData, drop: bool) -> bool:
    """A drag entering the page (or a drop on it), as Qt delivers it; True if the page accepted it."""
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    event = QDropEvent(QPointF(20, 20), *args) if drop else QDragEnterEvent(QPoint(20, 20), *args)
    QApplication.sendEvent(page, event)
    return event.isAccepted()


def test_dropping_files_and_a_folder_adds_them(page, images, tmp_path):
    files, folder, _ = images
    note = tmp_path / "notes.txt"
    note.write_text("not an image")
    mime = mime_with([files[0], files[1], folder, note])
    assert send_drag(page, mime, drop=False)
    assert send_drag(page, mime, drop=True)
    assert page.inputs.paths() == [files[0], files[1], folder]  # the text file is left out
    assert page.inputs.count() == 3 and page.run_button.isEnabled()
    assert not send_drag(page, mime_with([note]), drop=False)


def test_cancel_ends_cancelled_with_no_results(qtbot, window, page, tiny_demo, tmp_path):
    many = tmp_path / "many"
    many.mkdir()
    source = next(tiny_demo.rglob("*.png"))
    for i in range(200):
        shutil.copy(source, many / f"img_{i:03d}.png")
    page.add_inputs([many])
    page.run_button.click()
    assert page.progress.cancel_button.isEnabled() and not page.run_button.isEnabled()
    page.progress.cancel_button.click()
    wait_for_tasks(qtbot, window)
    assert page.progress.stage.text() == "Cancelled"
    assert page.table.rowCount() == 0 and "cancelled" in page.summary.text()
    assert page.run_button.isEnabled() and not window.ctx.errors.history


def test_a_file_that_is_not_a_model_is_refused_clearly(qtbot, window, page, tmp_path):
    fake = tmp_path / "fake.onnx"
    fake.write_bytes(b"not a model")
    window.ctx.state.set_onnx(fake)
    wait_for_tasks(qtbot, window)
    qtbot.waitUntil(lambda: bool(window.ctx.errors.history))
    assert "fake.onnx" in window.ctx.errors.history[-1][1]
    assert "cannot be used" in page.model_box.status.text() and not page.run_button.isEnabled()
    assert page.model_box.values["sha256"].text() == "—"


def test_a_tampered_model_is_refused_in_the_error_dialog(qtbot, window, page, tiny_run, tmp_path):
    """A copy of Model B with its class names swapped (and saved by the onnx package) does not match the
    sha256 recorded beside it: the page says so in the error dialog and does not load it."""
    import onnx

    from engine.core.errors import ModelIntegrityError
    from engine.deploy.integrity import verify_model

    for name in ("model_b.onnx", "model_b.onnx.sha256"):
        shutil.copy(tiny_run / name, tmp_path / name)
    model = tmp_path / "model_b.onnx"
    window.ctx.state.set_onnx(model)  # control: the untouched copy opens
    wait_for_tasks(qtbot, window)
    assert page.model_info and page.model_info.sha256 == sha256(model) and not window.ctx.errors.history

    proto = onnx.load(str(model))
    props = {p.key: p.value for p in proto.metadata_props} | {"classes": '["malignant", "benign"]'}
    onnx.helper.set_model_props(proto, props)
    onnx.save(proto, str(model))
    window.ctx.state.set_onnx(model)
    wait_for_tasks(qtbot, window)
    qtbot.waitUntil(lambda: bool(window.ctx.errors.history))
    message = window.ctx.errors.history[-1][1]
    assert str(model) in message and "model_b.onnx.sha256 records" in message and "export it again" in message
    assert window.ctx.errors.dialog.text() == message and window.ctx.errors.dialog.isVisible()
    with pytest.raises(ModelIntegrityError) as refused:  # the dialog shows the engine's refusal, word for word ...
        verify_model(model)
    assert refused.value.render(GUI_OPTIONS) == message  # ... naming what to do in the app's words
    assert "--model" in str(refused.value) and "--model" not in message  # the CLI names its flags, the app does not
    assert page.model_info is None and not page.run_button.isEnabled()
    assert "cannot be used" in page.model_box.status.text() and page.model_box.values["sha256"].text() == "—"
