"""The Data page: counts, plots, example images, skipped files, positive class, magnification filter, split."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt

from engine import api
from tests.desktop_app.conftest import wait_for_tasks


def _open(qtbot, window, path):
    window.controller.open_dataset(path)
    wait_for_tasks(qtbot, window)
    assert window.ctx.state.dataset is not None, window.ctx.errors.history
    return window.page("DataPage")


def _rows(table) -> dict[str, list[str]]:
    return {
        table.cell_text(r, 0): [table.cell_text(r, c) for c in range(1, table.columnCount())]
        for r in range(table.rowCount())
    }


def _choose(combo, data=None, text=None) -> None:
    """Pick an entry like a user does (the page reacts to ``activated``, which programmatic changes do not emit)."""
    index = combo.findData(data) if text is None else combo.findText(text)
    assert index >= 0
    combo.setCurrentIndex(index)
    combo.activated.emit(index)


@pytest.fixture
def odd_folder(tmp_path):
    """Class folders with 2 patients each, a corrupt PNG, a stray image in the root and a text file."""
    root = tmp_path / "odd"
    rng = np.random.default_rng(0)
    for label in ("benign", "malignant"):
        for p in (1, 2):
            folder = root / label / f"{label[0]}-patient{p}"
            folder.mkdir(parents=True)
            for i in range(3):
                Image.fromarray(rng.integers(0, 255, (24, 30, 3), dtype=np.uint8)).save(folder / f"img{i}.png")
    (root / "benign" / "b-patient1" / "broken.png").write_bytes(b"junk, not a PNG")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "stray.png")
    (root / "notes.txt").write_text("ignored: not an image")
    return root


def test_counts_table_and_bar_plots_show_what_was_found(qtbot, window, tiny_demo):
    page = _open(qtbot, window, tiny_demo)
    assert window.stack.currentWidget() is page
    table = page.summary.table
    assert table.header_texts()[:3] == ["Class", "Images", "Patients"]
    rows = _rows(table)
    assert {k: v[:2] for k, v in rows.items()} == {
        "benign": ["24", "4"],
        "malignant (positive)": ["24", "4"],
        "Total": ["48", "8"],
    }
    per_mag = window.ctx.state.dataset.summary()["per_magnification"]
    assert table.header_texts()[3:] == list(per_mag)
    assert [int(x) for x in rows["Total"][2:]] == list(per_mag.values())
    assert page.summary.class_chart.bar_values() == [24.0, 24.0]
    assert page.summary.class_chart.bar_labels() == ["benign", "malignant\n(positive)"]
    assert page.summary.mag_chart.bar_labels() == list(per_mag) == ["40X", "100X", "200X", "400X"]
    assert page.summary.mag_chart.bar_values() == [float(v) for v in per_mag.values()]
    assert str(tiny_demo) in page.source.text() and "48 images from 8 patients" in page.source.text()
    assert not page.banner.isHidden() and "SYNTHETIC" in page.banner.text()
    assert page.skipped_box.isHidden()
    assert page.empty.isHidden()


def test_example_images_appear_for_both_classes(qtbot, window, tiny_demo):
    page = _open(qtbot, window, tiny_demo)
    ds = window.ctx.state.dataset
    patients = defaultdict(set)
    for r in ds.records:
        patients[r.label].add(r.patient_id)
    assert set(page.thumbnails.views) == {"benign", "malignant"}
    for label, views in page.thumbnails.views.items():
        assert len(views) == 4 and all(v.has_image() for v in views)
        shown = {v.caption.text().split(" · ")[0] for v in views}
        assert shown <= patients[label] and len(shown) == 4  # one image from each of the 4 patients
    assert "positive" in page.thumbnails.row_labels["malignant"].text()


def test_split_table_matches_the_split_and_keeps_patients_apart(qtbot, window, tiny_demo):
    page = _open(qtbot, window, tiny_demo)
    ds, cfg = window.ctx.state.dataset, window.ctx.state.data_config
    rows = _rows(page.split_table.table)
    assert list(rows) == ["Train", "Validation", "Test", "All"]
    shown = {name: int(rows[title][0]) for name, title in (("train", "Train"), ("val", "Validation"), ("test", "Test"))}
    assert sum(shown.values()) == 8 and rows["All"][0] == "8"
    split = page.split
    assert split.assignment == api.make_split(ds, ratios=cfg.ratios, seed=cfg.split_seed, level="patient").assignment
    members = {n: {ds.records[i].patient_id for i in split.indices(n)} for n in ("train", "val", "test")}
    assert {n: len(p) for n, p in members.items()} == shown
    assert not (
        members["train"] & members["val"] or members["train"] & members["test"] or members["val"] & members["test"]
    )
    assert [rows[t][-2] for t in ("Train", "Validation", "Test")] == [
        str(len(split.indices(n))) for n in ("train", "val", "test")
    ]
    assert page.split_table.leak.isHidden() and page.split_settings.leak_warning.isHidden()


def test_new_ratios_and_seed_go_to_the_state_for_the_train_page(qtbot, window, tiny_demo):
    page = _open(qtbot, window, tiny_demo)
    settings = page.split_settings
    settings.ratio_spins["train"].setValue(0.6)
    settings.ratio_spins["val"].setValue(0.2)
    settings.ratio_spins["test"].setValue(0.2)
    settings.seed.setValue(7)
    assert "Changed" in settings.status.text()
    assert window.ctx.state.data_config.split_seed == 0  # nothing changes before Apply
    qtbot.mouseClick(settings.apply_button, Qt.MouseButton.LeftButton)
    cfg = window.ctx.state.data_config
    assert (cfg.ratios, cfg.split_seed, cfg.split_level) == ((0.6, 0.2, 0.2), 7, "patient")
    assert page.split.seed == 7 and page.split.ratios == (0.6, 0.2, 0.2)
    assert "seed 7" in page.split_table.caption.text() and "Applied" in settings.status.text()


def test_image_level_split_warns_that_it_leaks_patients(qtbot, window, tiny_demo):
    page = _open(qtbot, window, tiny_demo)
    settings = page.split_settings
    settings.level.setCurrentIndex(settings.level.findData("image"))
    assert not settings.leak_warning.isHidden() and "leaks patients" in settings.leak_warning.text()
    settings.apply_button.click()
    assert window.ctx.state.data_config.split_level == "image" and page.split.level == "image"
    assert not page.split_table.leak.isHidden() and "more than one split" in page.split_table.leak.text()
    settings.level.setCurrentIndex(settings.level.findData("patient"))
    assert settings.leak_warning.isHidden()


def test_ratios_that_do_not_add_up_to_one_are_refused(qtbot, window, tiny_demo):
    page = _open(qtbot, window, tiny_demo)
    settings = page.split_settings
    assert settings.error.isHidden() and settings.apply_button.isEnabled()
    settings.ratio_spins["val"].setValue(0.3)
    assert not settings.error.isHidden() and "1.15" in settings.error.text() and "add up to 1" in settings.error.text()
    assert not settings.apply_button.isEnabled()
    settings.apply_button.click()
    assert window.ctx.state.data_config.ratios == (0.7, 0.15, 0.15)
    settings.ratio_spins["val"].setValue(0.15)
    assert settings.error.isHidden() and settings.apply_button.isEnabled()


def test_skipped_files_undecodable_images_and_impossible_splits_are_shown(qtbot, window, odd_folder):
    page = _open(qtbot, window, odd_folder)
    assert not page.skipped_box.isHidden() and "(1)" in page.skipped_box.title()
    assert page.skipped_table.cell_text(0, 0) == "stray.png"
    assert "root folder" in page.skipped_table.cell_text(0, 1)
    assert "notes.txt" not in page.skipped_table.cell_text(0, 0)  # not an image: ignored, not "skipped"
    # broken.png is a record (discovery does not decode); its example slot says it cannot be decoded
    benign = page.thumbnails.views["benign"]
    broken = [v for v in benign if "broken.png" in v.caption.text()]
    assert len(broken) == 1 and not broken[0].has_image() and "cannot decode" in broken[0].caption.text()
    assert sum(v.has_image() for v in benign) == 3
    assert not page.mag_combo.isEnabled()  # class folders carry no magnification
    # 2 patients per class cannot fill train, val and test: said on the page, and in the dialog on Apply
    assert not page.split_table.error.isHidden() and "too few patients" in page.split_table.error.text()
    assert page.split is None
    page.split_settings.apply_button.click()
    assert window.ctx.errors.history[-1][0] == "Split" and "too few patients" in window.ctx.errors.history[-1][1]


def test_choosing_the_other_positive_class_reorders_the_classes(qtbot, window, tiny_demo):
    page = _open(qtbot, window, tiny_demo)
    assert page.positive_combo.currentText() == "malignant"
    _choose(page.positive_combo, text="benign")
    wait_for_tasks(qtbot, window)
    assert window.ctx.state.dataset.classes == ("malignant", "benign")
    assert window.ctx.state.data_config.positive_class == "benign"
    assert page.positive_combo.currentText() == "benign" and page.positive_combo.isEnabled()
    assert list(_rows(page.summary.table))[:2] == ["malignant", "benign (positive)"]
    assert page.summary.class_chart.bar_labels() == ["malignant", "benign\n(positive)"]
    assert "benign (positive)\nimages" in page.split_table.table.header_texts()


def test_magnification_filter_keeps_listing_every_magnification(qtbot, window, tiny_demo):
    page = _open(qtbot, window, tiny_demo)
    every = ["All magnifications", "40X", "100X", "200X", "400X"]
    assert [page.mag_combo.itemText(i) for i in range(page.mag_combo.count())] == every
    _choose(page.mag_combo, data="40X")
    wait_for_tasks(qtbot, window)
    ds = window.ctx.state.dataset
    assert {r.magnification for r in ds.records} == {"40X"} and len(ds.records) == 16
    assert window.ctx.state.data_config.magnification == "40X"
    assert _rows(page.summary.table)["Total"][:2] == ["16", "8"]
    assert [page.mag_combo.itemText(i) for i in range(page.mag_combo.count())] == every
    assert page.mag_combo.currentText() == "40X" and page.mag_combo.isEnabled()
    _choose(page.mag_combo, data=None)
    wait_for_tasks(qtbot, window)
    assert len(window.ctx.state.dataset.records) == 48 and window.ctx.state.data_config.magnification is None


def test_a_page_created_after_the_dataset_was_opened_shows_it(qtbot, window, tiny_demo):
    from desktop_app.pages.data import DataPage

    _open(qtbot, window, tiny_demo)
    late = DataPage(window.ctx)
    qtbot.addWidget(late)
    wait_for_tasks(qtbot, window)
    assert late.empty.isHidden() and _rows(late.summary.table)["Total"][:2] == ["48", "8"]
    assert all(v.has_image() for views in late.thumbnails.views.values() for v in views)
    assert late.split is not None


def test_without_a_dataset_the_page_says_how_to_open_one(window):
    page = window.page("DataPage")
    assert not page.empty.isHidden() and "Open dataset folder" in page.empty.text()
    assert page.body.isHidden()


def test_a_dataset_opened_already_filtered_still_lists_every_magnification(qtbot, window, tiny_demo):
    from engine.core.config import DataConfig

    window.controller.load(DataConfig(data=str(tiny_demo), positive_class=None, magnification="200X"))
    wait_for_tasks(qtbot, window)  # the page looks up the unfiltered magnifications on a worker
    page = window.page("DataPage")
    assert len(window.ctx.state.dataset.records) == 8
    items = [page.mag_combo.itemText(i) for i in range(page.mag_combo.count())]
    assert items == ["All magnifications", "40X", "100X", "200X", "400X"] and page.mag_combo.currentText() == "200X"
    assert "only 200X images" in page.source.text()
