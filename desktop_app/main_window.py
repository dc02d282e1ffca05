"""The main window: a sidebar of pages, a File menu and a status bar (device, open run, busy)."""

from __future__ import annotations

import logging

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QStackedWidget,
    QWidget,
)

from desktop_app.context import AppContext
from desktop_app.controller import Controller
from desktop_app.edition import apply_edition
from desktop_app.pages.base import Page
from desktop_app.pages.cohort import CohortPage
from desktop_app.pages.data import DataPage
from desktop_app.pages.diagnose import DiagnosePage
from desktop_app.pages.results import ResultsPage
from desktop_app.pages.slides import SlidesPage
from desktop_app.pages.start import StartPage
from desktop_app.pages.stress import StressPage
from desktop_app.pages.train import TrainPage
from desktop_app.settings import last_dir
from desktop_app.state import RunInfo

log = logging.getLogger(__name__)

PAGE_CLASSES = (StartPage, DataPage, TrainPage, StressPage, ResultsPage, DiagnosePage, SlidesPage, CohortPage)


class MainWindow(QMainWindow):
    def __init__(self, ctx: AppContext) -> None:
        super().__init__()
        self.ctx = ctx
        ctx.errors.parent_widget = self
        self.controller = Controller(ctx, self)
        self.setWindowTitle("HistoGuard")
        self.setMinimumSize(1024, 680)
        self.sidebar = QListWidget()
        self.sidebar.setObjectName("sidebar")
        self.sidebar.setFixedWidth(150)
        self.sidebar.setStyleSheet(
            "QListWidget#sidebar { background: #2b3a4a; color: #e8eef4; border: none; font-size: 14px; }"
            "QListWidget#sidebar::item { padding: 10px 14px; }"
            "QListWidget#sidebar::item:selected { background: #4a6f96; color: white; }"
        )
        self.stack = QStackedWidget()
        self.pages: dict[str, Page] = {}
        for cls in PAGE_CLASSES:
            page = cls(ctx, controller=self.controller) if cls is StartPage else cls(ctx)
            self.pages[cls.__name__] = page
            self.stack.addWidget(page)
            self.sidebar.addItem(page.title)
        self.sidebar.currentRowChanged.connect(self.stack.setCurrentIndex)
        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.sidebar)
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        self._build_menu()
        self._build_status_bar()
        self.pages["StartPage"].navigate.connect(self.show_page)
        ctx.state.dataset_changed.connect(self._dataset_opened)
        self.controller.dataset_loading.connect(self._dataset_loading)
        self.sidebar.setCurrentRow(0)
        apply_edition(self)
        self._restore_geometry()

    # --- navigation -------------------------------------------------------------------------------
    def show_page(self, name: str) -> None:
        """Show a page by class name ("DataPage") or title ("Data")."""
        for i, (cls_name, page) in enumerate(self.pages.items()):
            if name in (cls_name, page.title):
                self.sidebar.setCurrentRow(i)
                return
        raise KeyError(name)

    def page(self, name: str) -> Page:
        return self.pages[name]

    # --- menu and status bar ----------------------------------------------------------------------
    def _build_menu(self) -> None:
        menu = self.menuBar().addMenu("&File")
        for text, shortcut, slot in (
            ("Open &dataset folder…", QKeySequence.StandardKey.Open, self.open_dataset_dialog),
            ("Open &run folder…", "Ctrl+R", self.open_run_dialog),
            ("Open ONNX &model…", "Ctrl+M", self.open_onnx_dialog),
            ("&Export report…", "Ctrl+E", self.export_report),
            (None, None, None),
            ("&Quit", QKeySequence.StandardKey.Quit, self.close),
        ):
            if text is None:
                menu.addSeparator()
                continue
            action = QAction(text, self)
            action.setShortcut(QKeySequence(shortcut))
            action.triggered.connect(slot)
            menu.addAction(action)
        self.file_menu = menu

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.device_label = QLabel(f"Device: {self.ctx.state.device_text}")
        self.run_label = QLabel("No run folder open")
        self.busy = QProgressBar()
        self.busy.setRange(0, 0)
        self.busy.setMaximumWidth(120)
        self.busy.setVisible(False)
        bar.addWidget(self.run_label, 1)
        bar.addPermanentWidget(self.busy)
        bar.addPermanentWidget(self.device_label)
        self.ctx.state.device_changed.connect(self._device_changed)
        self.ctx.state.run_changed.connect(self._run_changed)
        self.ctx.state.message.connect(self._message)
        self.ctx.tasks.busy_changed.connect(self.busy.setVisible)

    def _device_changed(self, text: str) -> None:
        self.device_label.setText(f"Device: {text}")

    def _run_changed(self, run: RunInfo | None) -> None:
        if run is None:
            self.run_label.setText("No run folder open")
        else:
            state = "finished" if run.finished else "not finished"
            self.run_label.setText(f"Run: {run.path} ({state})")

    def _message(self, text: str) -> None:
        self.statusBar().showMessage(text, 8000)

    def _dataset_loading(self, what: str) -> None:
        self.statusBar().showMessage(f"Opening {what}…")

    def _dataset_opened(self, dataset) -> None:
        self.statusBar().showMessage(f"Opened {dataset.root} ({len(dataset.records)} images)", 8000)
        self.show_page("DataPage")

    # --- File menu actions ------------------------------------------------------------------------
    def open_dataset_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open dataset folder", last_dir(self.ctx.settings, "dataset"))
        if folder:
            self.controller.open_dataset(folder)

    def open_run_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open run folder", last_dir(self.ctx.settings, "run"))
        if folder and self.controller.open_run(folder):
            self.show_page("ResultsPage")

    def open_onnx_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open ONNX model", last_dir(self.ctx.settings, "onnx"), "ONNX models (*.onnx)"
        )
        if path and self.controller.open_onnx(path):
            self.show_page("DiagnosePage")

    def export_report(self) -> None:
        self.show_page("ResultsPage")
        self.pages["ResultsPage"].export_report_dialog()

    # --- window state -----------------------------------------------------------------------------
    def _restore_geometry(self) -> None:
        # size only: the window manager places the window (a saved position can be off-screen after a
        # monitor change, and restoreGeometry clamps to the screen the window happens to start on)
        size = self.ctx.settings.value("window/size")
        self.resize(size if isinstance(size, QSize) and size.isValid() else QSize(1280, 800))
        if self.ctx.settings.value("window/maximized", False, bool):
            self.setWindowState(Qt.WindowState.WindowMaximized)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt override)
        if self.ctx.tasks.running and not self._confirm_quit():
            event.ignore()
            return
        self.ctx.tasks.cancel_all()
        self.ctx.tasks.wait(30_000)
        self.ctx.settings.setValue("window/size", self.normalGeometry().size() if self.isMaximized() else self.size())
        self.ctx.settings.setValue("window/maximized", self.isMaximized())
        self.ctx.settings.sync()
        event.accept()

    def _confirm_quit(self) -> bool:
        names = ", ".join(t.name for t in self.ctx.tasks.tasks if t.running)
        answer = QMessageBox.question(
            self,
            "Quit HistoGuard",
            f"{names} is still running. Cancel it and quit? Training can be resumed later from its run folder.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes
