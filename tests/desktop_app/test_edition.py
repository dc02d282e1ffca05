"""The Diagnose edition's window: what needs PyTorch says so and cannot be started; the rest works."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QLabel

from engine.core.edition import DIAGNOSE, FULL, edition, is_missing_torch


@pytest.fixture
def diagnose_window(monkeypatch, qtbot, settings):
    monkeypatch.setenv("HISTOGUARD_EDITION", "diagnose")
    from desktop_app.app import build_window, get_app
    from tests.desktop_app.conftest import _end_tasks

    get_app()
    win = build_window(settings)
    qtbot.addWidget(win, before_close_func=_end_tasks)
    win.show()
    return win


def test_edition_follows_torch_and_the_override(monkeypatch):
    assert edition() == FULL  # the test environment has PyTorch
    monkeypatch.setenv("HISTOGUARD_EDITION", "diagnose")
    assert edition() == DIAGNOSE
    assert is_missing_torch(ModuleNotFoundError("No module named 'torch'", name="torch"))
    assert is_missing_torch(ModuleNotFoundError("x", name="torchvision.models"))
    assert not is_missing_torch(ModuleNotFoundError("No module named 'yaml'", name="yaml"))
    assert not is_missing_torch(ValueError("torch"))


def test_full_window_has_no_banner(window):
    assert window.windowTitle() == "HistoGuard"
    assert window.findChildren(QLabel, "editionBanner") == []


def test_diagnose_window_switches_off_what_needs_pytorch(diagnose_window, tiny_demo, qtbot):
    win = diagnose_window
    assert "Diagnose edition" in win.windowTitle()
    train, stress = win.page("TrainPage"), win.page("StressPage")
    banners = win.findChildren(QLabel, "editionBanner")
    assert len(banners) == 3 and all("full edition" in b.text() for b in banners)  # Train, Stress test, Slides
    win.controller.open_dataset(tiny_demo)  # opening a dataset works without PyTorch ...
    qtbot.waitUntil(lambda: win.ctx.state.dataset is not None, timeout=60_000)
    train._refresh()
    assert not train.start_button.isEnabled()  # ... but training cannot be started
    assert train.start_hint.text() == "Needs the full edition"
    combo = stress.mode_combo
    assert combo.currentData() == "black"
    assert not combo.model().item(combo.findData("white")).isEnabled()
    assert not stress.results.isTabEnabled(stress.results.indexOf(stress.single))
    assert stress.results.isTabEnabled(stress.results.indexOf(stress.bb_view))


def test_error_dialog_explains_a_missing_pytorch():
    from desktop_app.errors import user_message

    text = user_message(ModuleNotFoundError("No module named 'torch'", name="torch"))
    assert "needs PyTorch" in text and "full edition" in text and "bug" not in text
