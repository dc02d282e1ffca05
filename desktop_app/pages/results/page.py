"""Results page: confusion matrices of the five conditions, the metrics beside the majority baseline, the eps
sweep, image or patient level, and the report export (HTML with embedded figures + CSV, optionally PDF).
Every metric carries its 95% patient-level interval. A second tab shows the robustness evaluation (attacks,
transfer, black-box, natural perturbations, smallest flipping eps, paired comparisons, gradient-masking checks),
a third the calibration (temperature, ECE, Brier, reliability diagram, review band, coverage curve); the last the
report's gallery of test images with their attribution maps."""

from __future__ import annotations

from html import escape
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QStackedWidget,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_app.pages.base import Page, heading
from desktop_app.pages.results.export import export_files
from desktop_app.settings import last_dir, remember_dir
from desktop_app.state import RunInfo
from desktop_app.widgets.calibration_view import CalibrationView
from desktop_app.widgets.confusion_heatmap import ConfusionHeatmap
from desktop_app.widgets.cv_view import CrossValidationView
from desktop_app.widgets.gallery_view import GalleryView
from desktop_app.widgets.metrics_table import MetricsTable
from desktop_app.widgets.progress_panel import ProgressPanel
from desktop_app.widgets.robustness_view import RobustnessView
from desktop_app.widgets.sweep_plot import SweepPlot
from desktop_app.widgets.sweep_table import SweepTable
from desktop_app.workers import Task
from engine.core.errors import RunFolderError
from engine.report.labels import at_level, attack_kind, eps_text, fmt, intervals_text, majority_text

SYNTHETIC_BANNER = (
    "<b>Synthetic data.</b> This run was trained and tested on generated images, not patient tissue: "
    "results on synthetic data say nothing about diagnostic performance."
)
NO_RUN = (
    "<h3>No results to show yet</h3><p>Open a run folder (File ▸ Open run folder…) or train one on the Train page. "
    "A finished run shows here its confusion matrices, the metrics beside the majority-class baseline, "
    "and the accuracy under attack at each eps.</p>"
)
LEVEL_NOTES = {
    "image": "Image level: every test image counts once.",
    "patient": "Patient level: the mean predicted probability over each patient's images; n counts patients.",
}
PDF_FILTER = "PDF report, with the HTML and CSV beside it (*.pdf)"


class ResultsPage(Page):
    title = "Results"

    def __init__(self, ctx, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.level = "image"
        self.heatmaps: list[ConfusionHeatmap] = []
        self.last_export: dict[str, Path] | None = None
        self.stack = QStackedWidget()
        self.stack.addWidget(self._empty_state())
        self.stack.addWidget(self._content())
        layout = QVBoxLayout(self)
        layout.setContentsMargins(24, 16, 24, 12)
        layout.addWidget(self.stack)
        ctx.state.run_changed.connect(self.show_run)
        self.show_run(ctx.state.run)

    # --- building ---------------------------------------------------------------------------------
    def _empty_state(self) -> QWidget:
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(heading("Results"))
        self.empty_label = QLabel(NO_RUN)
        self.empty_label.setObjectName("resultsEmpty")
        self.empty_label.setWordWrap(True)
        layout.addWidget(self.empty_label)
        row = QHBoxLayout()
        self.open_run_button = QPushButton("Open run folder…")
        self.open_run_button.clicked.connect(self._open_run)
        self.train_button = QPushButton("Go to the Train page")
        self.train_button.clicked.connect(self._go_train)
        row.addWidget(self.open_run_button)
        row.addWidget(self.train_button)
        row.addStretch(1)
        layout.addLayout(row)
        layout.addStretch(1)
        return box

    def _content(self) -> QWidget:
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        self.run_label = QLabel()
        self.run_label.setWordWrap(True)
        self.run_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addLayout(self._title_row())
        layout.addWidget(self.run_label)
        self.banner = QLabel(SYNTHETIC_BANNER)
        self.banner.setObjectName("syntheticBanner")
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet(
            "background:#ffe680; border:2px solid #c9a000; padding:8px; color:#3d3000; font-size:13px;"
        )
        layout.addWidget(self.banner)
        self.export_status = QLabel()
        self.export_status.setOpenExternalLinks(True)
        self.export_status.setWordWrap(True)
        layout.addWidget(self.export_status)
        self.robustness = RobustnessView()
        self.calibration = CalibrationView()
        self.tabs = QTabWidget()
        self.tabs.addTab(self._study_tab(), "Study: clean and FGSM")
        self.tabs.addTab(scrolled(self.robustness), "Robustness: attacks, transfer, black-box")
        self.tabs.addTab(scrolled(self.calibration), "Calibration")
        self.cross_validation = CrossValidationView()
        self.cv_tab = scrolled(self.cross_validation)
        self.tabs.addTab(self.cv_tab, "Cross-validation")
        self.tabs.setTabVisible(3, False)
        self.gallery = GalleryView()
        self.tabs.addTab(scrolled(self.gallery), "Explanations (gallery)")
        layout.addWidget(self.tabs, 1)
        return box

    def show_robustness(self) -> None:
        self.tabs.setCurrentIndex(1)

    def show_calibration(self) -> None:
        self.tabs.setCurrentIndex(2)

    def show_cross_validation(self) -> None:
        self.tabs.setCurrentIndex(3)

    def _title_row(self) -> QHBoxLayout:
        """The page title, with the export (and its progress while it runs) on the right."""
        row = QHBoxLayout()
        row.addWidget(heading("Results"), 1)
        self.progress = ProgressPanel()
        self.progress.setVisible(False)
        row.addWidget(self.progress, 1)
        self.export_button = QPushButton("Export report…")
        self.export_button.setToolTip("report.html with the figures, metrics.csv, and optionally a PDF")
        self.export_button.clicked.connect(self.export_report_dialog)
        row.addWidget(self.export_button, 0, Qt.AlignmentFlag.AlignBottom)
        return row

    def _study_tab(self) -> QWidget:
        """The five conditions, image or patient level (the switch sits in this tab: robustness is image level)."""
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(4, 4, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("<b>Show:</b>"))
        self.image_button = QRadioButton("Image level")
        self.patient_button = QRadioButton("Patient level")
        self.image_button.setChecked(True)
        self.level_group = QButtonGroup(self)
        for b in (self.image_button, self.patient_button):
            self.level_group.addButton(b)
            row.addWidget(b)
        self.patient_button.toggled.connect(self._level_toggled)
        self.level_note = QLabel(LEVEL_NOTES["image"])
        self.level_note.setStyleSheet("color: #555;")
        row.addWidget(self.level_note, 1)
        layout.addLayout(row)
        layout.addWidget(scrolled(self._results()), 1)
        return box

    def _results(self) -> QWidget:
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 4, 8, 4)
        self.cm_heading = QLabel()
        self.cm_heading.setWordWrap(True)
        layout.addWidget(self.cm_heading)
        self.heatmap_row = QHBoxLayout()
        layout.addLayout(self.heatmap_row)
        self.baseline_label = QLabel()
        self.baseline_label.setObjectName("baselineLabel")
        self.baseline_label.setWordWrap(True)
        layout.addWidget(self.baseline_label)
        self.metrics = MetricsTable()
        layout.addWidget(self.metrics)
        self.interval_note = QLabel()
        self.interval_note.setWordWrap(True)
        self.interval_note.setStyleSheet("color: #555;")
        layout.addWidget(self.interval_note)
        layout.addWidget(QLabel("<b>Accuracy against eps</b> (FGSM, image level; k/255 of the pixel range)"))
        sweep_row = QHBoxLayout()
        self.sweep_table = SweepTable()
        self.sweep_plot = SweepPlot()
        sweep_row.addWidget(self.sweep_table, 1, Qt.AlignmentFlag.AlignTop)
        sweep_row.addWidget(self.sweep_plot, 1)
        layout.addLayout(sweep_row)
        return box

    # --- showing a run ----------------------------------------------------------------------------
    def show_run(self, run: RunInfo | None) -> None:
        if run is None or run.report is None:
            self.empty_label.setText(NO_RUN if run is None else self._unfinished_text(run))
            self.stack.setCurrentIndex(0)
            return
        report = run.report
        self.banner.setVisible(run.synthetic)
        has_patient = bool(at_level(report["evaluations"], "patient"))
        self.patient_button.setEnabled(has_patient)
        if not has_patient:
            self.image_button.setChecked(True)
        self.run_label.setText(self._run_text(run))
        self.sweep_table.set_sweep(report.get("sweep") or [])
        self.sweep_plot.set_sweep(report.get("sweep") or [])
        self.robustness.set_report(report)
        self.calibration.set_report(report)
        self.gallery.set_gallery(report.get("gallery"), run.path)
        cv = run.cross_validation
        self.tabs.setTabVisible(3, cv is not None)
        if cv is not None:
            self.cross_validation.set_summary(cv, run.path)
            self.tabs.setTabText(3, f"Cross-validation ({cv['k']} folds)")
        self.export_status.clear()
        self.stack.setCurrentIndex(1)
        self.show_level(self.level)

    def show_level(self, level: str) -> None:
        """Show the confusion matrices and metrics of 'image' or 'patient' level."""
        run = self.ctx.state.run
        self.level = level
        self.level_note.setText(LEVEL_NOTES[level])
        if run is None or run.report is None:
            return
        classes = run.report["dataset"]["classes"]
        evals = at_level(run.report["evaluations"], level)
        self._set_heatmaps(evals, classes, self._arch(run))
        self.metrics.set_evaluations(evals)
        self.interval_note.setText(escape(intervals_text(run.report.get("intervals"))))
        self.interval_note.setVisible(bool(run.report.get("intervals")))
        unit = "images" if level == "image" else "patients"
        n = f"; n = {evals[0]['n']} {unit} each" if evals else ""
        self.cm_heading.setText(
            f"<b>Confusion matrices</b> ({level} level{n}). Rows: true class; columns: predicted class; "
            f"positive class <b>{escape(classes[1])}</b>. Each cell: count and share of its row; "
            "the darker, the larger."
        )
        baseline = evals[0].get("majority_baseline") if evals else None
        self.baseline_label.setText(
            f"<b>Majority-class baseline {fmt(baseline)}</b>: the accuracy of "
            f"{escape(majority_text(evals[0], classes))}. "
            "A useful model must do clearly better."
            if baseline is not None
            else "Majority-class baseline: — (undefined for this test set)"
        )

    def _set_heatmaps(self, evals: list[dict], classes: list[str], arch: str) -> None:
        while len(self.heatmaps) < len(evals):
            self.heatmaps.append(ConfusionHeatmap())
            self.heatmap_row.addWidget(self.heatmaps[-1])
        for i, heatmap in enumerate(self.heatmaps):
            heatmap.setVisible(i < len(evals))
            if i < len(evals):
                title, subtitle = heatmap_titles(evals[i], arch)
                heatmap.set_data(evals[i]["confusion_matrix"], classes, title, subtitle)

    @staticmethod
    def _arch(run: RunInfo) -> str:
        return run.config.train.arch if run.config is not None else ""

    @staticmethod
    def _run_text(run: RunInfo) -> str:
        report, arch = run.report, ResultsPage._arch(run)
        test = (report.get("split") or {}).get("test") or {}
        return (
            f"Run <code>{escape(str(run.path))}</code>: {escape(arch) + ', ' if arch else ''}"
            f"FGSM eps {eps_text(report['eps'])}; "
            f"test set {test.get('n_images', '?')} images of {test.get('n_patients', '?')} patients."
        )

    @staticmethod
    def _unfinished_text(run: RunInfo) -> str:
        return (
            f"<h3>This run has not finished</h3><p>{escape(str(run.path))} has no report.json yet: "
            "its results appear here when training and evaluation are done. Resume it on the Train page, "
            "or open a finished run folder (File ▸ Open run folder…).</p>"
        )

    def _level_toggled(self, patient: bool) -> None:
        self.show_level("patient" if patient else "image")

    def _open_run(self) -> None:
        self.window().open_run_dialog()

    def _go_train(self) -> None:
        self.window().show_page("TrainPage")

    # --- export -----------------------------------------------------------------------------------
    def export_report_dialog(self) -> None:
        """File ▸ Export report…: pick a file name (.html, or .pdf for a PDF as well), then export."""
        run = self.ctx.state.run
        if run is None or run.report is None:
            self.ctx.errors.show("Export report", RunFolderError(
                "there is no finished run to export: open a run folder that has a report.json "
                "(File ▸ Open run folder…) or finish training one on the Train page"))  # fmt: skip
            return
        start = str(Path(last_dir(self.ctx.settings, "export")) / f"{run.path.name}-report.html")
        path, chosen = QFileDialog.getSaveFileName(
            self, "Export report", start, f"HTML report, with metrics CSV beside it (*.html);;{PDF_FILTER}"
        )
        if not path:
            return
        if not Path(path).suffix:
            path += ".pdf" if chosen == PDF_FILTER else ".html"
        remember_dir(self.ctx.settings, "export", Path(path).parent)
        self.export_report(path)

    def export_report(self, path: str | Path) -> Task:
        """Write the open run's report to ``path`` (a folder, an .html or a .pdf name) on a worker."""
        run = self.ctx.state.run
        if run is None or run.report is None:
            raise RunFolderError("no finished run is open; open a run folder with a report.json first")
        task = self.start_task("Export report", export_files, run.report, run.path, Path(path).expanduser().absolute())
        self.progress.setVisible(True)
        self.progress.follow(task, "Exporting report…")
        self.export_button.setEnabled(False)
        task.finished.connect(self._exported)
        task.ended.connect(self._export_ended)
        return task

    def _exported(self, paths: dict[str, Path]) -> None:
        self.last_export = paths
        links = " · ".join(f"<a href='{p.as_uri()}'>{p.name}</a>" for p in paths.values())
        self.export_status.setText(f"Report written to {paths['html'].parent}: {links}")
        self.ctx.state.message.emit(f"Report written to {paths['html']}")

    def _export_ended(self) -> None:
        self.export_button.setEnabled(True)
        self.progress.setVisible(False)


def scrolled(widget: QWidget) -> QScrollArea:
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setWidget(widget)
    return scroll


def heatmap_titles(e: dict, arch: str = "") -> tuple[str, str]:
    """('Model B · densenet121', 'FGSM 8/255 from A, transfer') for a confusion matrix's two title lines."""
    title = f"Model {e['model']}" + (f" · {arch}" if arch else "")
    kind = attack_kind(e)
    if kind == "clean":
        return title, "clean images (no attack)"
    return title, f"FGSM {eps_text(e['eps'])} from {e['attack_source']}, {kind}"
