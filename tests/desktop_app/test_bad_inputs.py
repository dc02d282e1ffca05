"""Bad image files in the app (issue 6): a corrupt file and a decompression bomb are shown with the very message
the engine raises for them, in the Diagnose table and its details, in the error dialog, and on the Data page's
example images; the app neither crashes nor hides them."""

from __future__ import annotations

import shutil
import struct
import zlib
from html import escape
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from desktop_app.widgets.prediction_table import short_error
from engine import api
from engine.core.errors import DecodeError
from tests.desktop_app.conftest import wait_for_tasks


def bomb_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A 60-byte PNG whose header (with a correct CRC) claims width x height pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


def engine_message(path: Path) -> str:
    """What the engine says about ``path`` (the app must show exactly this)."""
    with pytest.raises(DecodeError) as info:
        api.load_rgb(path)
    message = str(info.value)
    assert path.name in message
    return message


@pytest.fixture
def bad_files(tmp_path) -> dict[str, Path]:
    folder = tmp_path / "bad"
    folder.mkdir()
    good = folder / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(good)
    corrupt = folder / "corrupt.png"
    corrupt.write_bytes(good.read_bytes()[:120])  # cut short inside its pixel data
    bomb = folder / "bomb.png"
    bomb.write_bytes(bomb_png())
    return {"good": good, "corrupt": corrupt, "bomb": bomb}


@pytest.fixture
def diagnose(qtbot, window, tiny_run):
    window.controller.open_run(tiny_run)
    window.show_page("Diagnose")
    wait_for_tasks(qtbot, window)
    return window.page("DiagnosePage")


def test_diagnose_lists_a_corrupt_file_and_a_bomb_with_the_engines_message(qtbot, window, diagnose, bad_files):
    expected = {name: engine_message(bad_files[name]) for name in ("corrupt", "bomb")}
    assert "truncated" in expected["corrupt"] and "bomb" in expected["bomb"]
    diagnose.add_inputs(list(bad_files.values()))
    diagnose.run_prediction()
    wait_for_tasks(qtbot, window)
    table = diagnose.table
    assert table.rowCount() == 3 and not window.ctx.errors.history  # bad files are rows, not a failed batch
    shown = {}
    for r in range(table.rowCount()):
        row = table.row_at(r)
        shown[Path(row["path"]).stem] = (r, row)
    assert shown["good"][1]["predicted"] in ("benign", "malignant") and not shown["good"][1]["error"]
    for name, message in expected.items():
        r, row = shown[name]
        assert row["error"] == message
        assert table.item(r, 1).text() == "not read"
        assert table.item(r, 5).text() == short_error(row) == message.split(": ", 1)[1]
        assert table.item(r, 5).toolTip() == message
        table.selectRow(r)
        assert diagnose.verdict.text() == "not read" and not diagnose.image_view.has_image()
        assert escape(message.split(": ", 1)[1]) in diagnose.details.text()
    assert "2 unreadable" in diagnose.summary.text()


def test_a_file_that_turned_into_a_bomb_is_reported_in_the_error_dialog(qtbot, window, diagnose, bad_files):
    good = bad_files["good"]
    diagnose.add_inputs([good])
    diagnose.run_prediction()
    wait_for_tasks(qtbot, window)
    assert diagnose.table.rowCount() == 1 and diagnose.table.row_at(0)["predicted"]
    diagnose.table.clearSelection()
    wait_for_tasks(qtbot, window)
    shutil.copy(bad_files["bomb"], good)  # replaced on disk after the prediction
    expected = engine_message(good)
    diagnose.table.selectRow(0)  # the preview is decoded on a worker: it fails, the dialog says why
    wait_for_tasks(qtbot, window)
    qtbot.waitUntil(lambda: bool(window.ctx.errors.history))
    assert window.ctx.errors.history[-1] == ("Load image", expected)
    dialog = window.ctx.errors.dialog
    assert dialog is not None and dialog.isVisible() and dialog.text() == expected
    assert not diagnose.image_view.has_image()


def test_data_page_example_images_name_the_bad_files(qtbot, window, tmp_path, bad_files):
    root = tmp_path / "dataset"
    rng = np.random.default_rng(1)
    for label in ("benign", "malignant"):
        (root / label).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(root / label / f"ok{i}.png")
    for name in ("corrupt", "bomb"):  # 4 files in the class: all of them are examples
        shutil.copy(bad_files[name], root / "benign" / f"{name}.png")
    expected = {name: engine_message(root / "benign" / f"{name}.png") for name in ("corrupt", "bomb")}
    window.controller.open_dataset(root)
    wait_for_tasks(qtbot, window)
    page = window.page("DataPage")
    views = page.thumbnails.views["benign"]
    assert sum(v.has_image() for v in views) == 2
    for name, message in expected.items():
        (view,) = [v for v in views if v.toolTip() == message]
        assert not view.has_image() and view.caption.text() == f"cannot decode {name}.png"
    assert not window.ctx.errors.history
