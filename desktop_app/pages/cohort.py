"""Cohort page: a folder of slides predicted into one cohort folder (``histoguard slides``), or a cohort folder
opened; its table sortable, failed slides marked; a double-click shows a slide with its saved heatmap on the
Slides page.

The run, the reading of the table and of a saved prediction are tasks on the worker pool; the table is read
again after every slide, so it fills in while the cohort runs. A run goes on where an earlier one stopped (the
engine keeps finished slides made with the same model and settings).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QHBoxLayout, QLabel, QPushButton, QSpinBox, QVBoxLayout, QWidget

from desktop_app.pages.base import Page, heading
from desktop_app.settings import last_dir, remember_dir
from desktop_app.widgets.cohort_table import CohortTable
from desktop_app.widgets.progress_panel import ProgressPanel
from desktop_app.workers import Task
from engine.slides.cohort import DEFAULT_TOP_K, CohortSettings

HINT = (
    "Predict every slide of a folder with the app's ONNX model into one cohort folder (a sub-folder per slide, "
    "cohort.csv and cohort.html), or open a cohort folder made by `histoguard slides`. Score: the mean of the top-k "
    "tile probabilities. Double-click a slide to see it with its heatmap on the Slides page. Research tool, not a "
    "medical device."
)


def read_cohort(folder: Path, *, on_progress=None, cancel=None) -> dict:
    from engine import api

    return api.read_cohort(folder)


def run_cohort(slides: Path, model: Path, out: Path, settings, *, on_progress=None, cancel=None) -> dict:
    from engine import api

    api.run_cohort([slides], model, out, settings, on_progress=on_progress, cancel=cancel)
    return api.read_cohort(out)


def load_saved(folder: Path, slide: Path, *, on_progress=None, cancel=None) -> tuple:
    """(SlidePrediction, its record) saved in a cohort slide folder, on the slide as opened now."""
    from engine import api

    with api.open_slide(slide) as s:
        info = api.slide_info(s, slide)
    return api.load_prediction(folder, info)


class CohortPage(Page):
    title = "Cohort"

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.cohort: dict | None = None  # read_cohort's dict of the folder shown
        self.slides_folder: Path | None = None
        self.task: Task | None = None
        self._saved: tuple | None = None  # a saved prediction waiting for its slide to open on the Slides page
        layout = QVBoxLayout(self)
        layout.setContentsMargins(16, 12, 16, 12)
        layout.addWidget(heading("Cohort", HINT))
        layout.addLayout(self._controls())
        self.summary = QLabel("No cohort yet: open a cohort folder, or choose a folder of slides and run it.")
        self.summary.setWordWrap(True)
        layout.addWidget(self.summary)
        self.table = CohortTable()
        self.table.slide_chosen.connect(self.open_in_slides)
        layout.addWidget(self.table, 1)
        self.progress = ProgressPanel()
        layout.addWidget(self.progress)
        ctx.state.onnx_changed.connect(self._update_buttons)
        self._update_buttons()

    def _controls(self) -> QHBoxLayout:
        row = QHBoxLayout()
        self.open_button = QPushButton("Open cohort folder…")
        self.open_button.clicked.connect(self.open_dialog)
        self.slides_button = QPushButton("Slides folder…")
        self.slides_button.clicked.connect(self.choose_slides)
        self.slides_label = QLabel("no slides folder")
        self.top_k = QSpinBox()
        self.top_k.setRange(1, 1000)
        self.top_k.setValue(DEFAULT_TOP_K)
        self.top_k.setPrefix("top-k ")
        self.top_k.setToolTip("slide score = mean of the k highest tile probabilities")
        self.run_button = QPushButton("Run cohort…")
        self.run_button.clicked.connect(self.run_dialog)
        for w in (self.open_button, self.slides_button, self.slides_label, self.top_k, self.run_button):
            row.addWidget(w)
        row.addStretch(1)
        return row

    def _update_buttons(self, *_) -> None:
        idle = self.task is None
        self.run_button.setEnabled(idle and self.slides_folder is not None and self.ctx.state.onnx_path is not None)
        self.run_button.setToolTip("" if self.ctx.state.onnx_path else "open an ONNX model first (File menu)")
        self.open_button.setEnabled(idle)
        self.slides_button.setEnabled(idle)

    # --- a cohort folder --------------------------------------------------------------------------
    def open_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open cohort folder", last_dir(self.ctx.settings, "cohort"))
        if folder:
            remember_dir(self.ctx.settings, "cohort", Path(folder) / "x")
            self.open_cohort(folder)

    def open_cohort(self, folder: str | Path) -> Task:
        task = self.start_task("Open cohort", read_cohort, Path(folder))
        task.finished.connect(self.show_cohort)
        return task

    def show_cohort(self, cohort: dict) -> None:
        self.cohort = cohort
        meta, rows = cohort["meta"], cohort["rows"]
        robust = bool(meta.get("settings", {}).get("robustness"))
        self.table.set_rows(rows, meta.get("positive") or "positive", meta.get("top_k", ""), robust)
        c = meta.get("counts", {})
        text = (
            f"{cohort['folder']}: {len(rows)} slides, {c.get('done', 0)} done, {c.get('failed', 0)} failed; model "
            f"{Path(meta.get('model', '')).name} (sha256 {str(meta.get('model_sha256', ''))[:12]}…)"
        )
        if meta.get("uncertain_note"):
            text += f". Uncertain fraction {meta['uncertain_note']}."
        self.summary.setText(text)

    # --- a run ------------------------------------------------------------------------------------
    def choose_slides(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of slides", last_dir(self.ctx.settings, "diagnose"))
        if folder:
            remember_dir(self.ctx.settings, "diagnose", Path(folder) / "x")
            self.set_slides_folder(folder)

    def set_slides_folder(self, folder: str | Path) -> None:
        self.slides_folder = Path(folder)
        self.slides_label.setText(self.slides_folder.name)
        self.slides_label.setToolTip(str(self.slides_folder))
        self._update_buttons()

    def run_dialog(self) -> None:
        out = QFileDialog.getExistingDirectory(self, "Cohort folder (results)", last_dir(self.ctx.settings, "cohort"))
        if out:
            remember_dir(self.ctx.settings, "cohort", Path(out) / "x")
            self.run(out)

    def run(self, out: str | Path, settings: CohortSettings | None = None) -> Task | None:
        if not self.run_button.isEnabled():
            return None
        settings = settings or CohortSettings(top_k=self.top_k.value())
        self.out = Path(out)
        args = (self.slides_folder, self.ctx.state.onnx_path, self.out, settings)
        self.task = self.start_task("Cohort", run_cohort, *args)
        self.task.finished.connect(self.show_cohort)
        self.task.progress.connect(self._progress)
        self.task.ended.connect(self._ended)
        self.progress.follow(self.task, "Listing slides and checking the model…")
        self._update_buttons()
        return self.task

    def _progress(self, p) -> None:
        if p.stage == "cohort" and (self.out / "cohort.csv").is_file():
            self.open_cohort(self.out)  # the table as it stands, read on a worker

    def _ended(self) -> None:
        self.task = None
        self._update_buttons()

    def cancel(self) -> None:
        self.progress.cancel()

    # --- one slide on the Slides page ---------------------------------------------------------------
    def open_in_slides(self, index: int) -> Task | None:
        """Show row ``index``'s slide with its saved heatmap on the Slides page (done slides only)."""
        row, entry = self.cohort["rows"][index], self.cohort["meta"]["slides"][index]
        if row.get("status") != "done":
            self.ctx.state.message.emit(f"{row['slide']}: {row.get('status')} {row.get('error', '')}".strip())
            return None
        folder, slide = Path(self.cohort["folder"]) / row["folder"], Path(entry["path"])
        task = self.start_task("Open saved prediction", load_saved, folder, slide)
        task.finished.connect(self._saved_loaded)
        return task

    def _saved_loaded(self, result: tuple) -> None:
        prediction, record = result
        self._saved = (prediction, record)
        slides = self.window().page("SlidesPage")
        slides.open_slide(record["path"]).finished.connect(self._slide_opened)
        self.window().show_page("SlidesPage")

    def _slide_opened(self, _result) -> None:
        if self._saved is not None:
            prediction, record = self._saved
            self._saved = None
            slides = self.window().page("SlidesPage")
            slides.show_saved_prediction(prediction, Path(record["model"]), record["image_size"])
