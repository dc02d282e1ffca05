"""The Diagnose page's attribution map: why the model made its call on the selected image.

``explain`` runs on a worker (``engine.api.explain_image``: occlusion with onnxruntime only, or a captum method on
the checkpoint beside the ONNX file) and touches no widgets; ``ExplainAction`` is the UI-thread part: the controls
(``ExplainBar``), the map laid over the image as the model saw it (``MapView``), the randomisation check in words,
and Export PNG (written on a worker). With Show map on, every newly selected image is explained.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QFileDialog

from desktop_app.settings import last_dir, remember_dir
from desktop_app.widgets.explain_bar import ExplainBar
from desktop_app.workers import Task
from engine import api
from engine.core.catalog import EXPLAIN_INFO
from engine.core.fileio import write_bytes

NO_TORCH = "needs PyTorch (the full edition)"
NO_CHECKPOINT = "needs the checkpoint the ONNX file was exported from, beside it in its run folder (model_x/best.pt)"


def explain(model_path: Path, image_path: str, method: str, *, on_progress=None, cancel=None) -> dict:
    """The map of one image file, with its colours for the overlay (worker)."""
    result = api.explain_image(model_path, image_path, method=method, on_progress=on_progress, cancel=cancel)
    return {**result, "heat": api.heat_rgba(result["shown"])}


def write_png(path: str, image, shown, opacity: float, *, on_progress=None, cancel=None) -> Path:
    """The map over the image at ``opacity``, as the CLI writes it (worker)."""
    write_bytes(path, api.overlay_png(image, shown, opacity))
    return Path(path)


def status_html(r: dict) -> str:
    """What the map shows, for which class, and the randomisation check."""
    info = EXPLAIN_INFO[r["method"]]
    check = api.sanity_text(r["sanity"])
    what = f"<b>{escape(info.label)}</b> map of <b>{escape(r['target'])}</b>: {escape(info.shows)}."
    return f"{what} {'⚠ ' if r['sanity'] and not r['sanity']['passed'] else ''}{escape(check[0].upper() + check[1:])}."


class ExplainAction(QObject):
    def __init__(self, page) -> None:
        super().__init__(page)
        self.page = page
        self.bar = ExplainBar()
        self.task: Task | None = None
        self.result: dict | None = None
        self.onnx_only = False  # the Diagnose edition: occlusion only
        self._path: str | None = None  # the selected image
        self.bar.show_button.toggled.connect(self._toggled)
        self.bar.method_changed.connect(self._method_changed)
        self.bar.opacity_changed.connect(self._opacity_changed)
        self.bar.export_button.clicked.connect(self.export_dialog)

    @property
    def view(self):
        return self.page.image_view

    def limit_to_onnx(self) -> None:
        self.onnx_only = True
        self._refresh_methods()

    def model_read(self, info) -> None:
        self._refresh_methods()
        self.row_changed(self._row())

    def _refresh_methods(self) -> None:
        info = self.page.model_info
        beside = info is not None and api.checkpoint_beside(info.path).is_file()
        why = "" if beside else NO_CHECKPOINT
        self.bar.allow({n: "" if not i.torch else NO_TORCH if self.onnx_only else why for n, i in EXPLAIN_INFO.items()})

    def _row(self) -> dict | None:
        selected = self.page.table.selectionModel().selectedRows()
        return self.page.table.row_at(selected[0].row()) if selected else None

    def row_changed(self, row: dict | None) -> None:
        """A row was selected (or none): forget the last map, and explain this one when Show map is on."""
        self.result = None
        self.bar.export_button.setEnabled(False)
        self._path = row["path"] if row and not row.get("error") else None
        self.bar.set_status("")
        if self.bar.show_button.isChecked():
            self.run()

    def run(self) -> Task | None:
        info = self.page.model_info
        if info is None or self._path is None or self.page.predicted_with != info.path:
            self.bar.set_status("Select a predicted image to see its map." if self.bar.show_button.isChecked() else "")
            return None
        method = self.bar.current_method()
        if self.task is not None:
            self.task.cancel()  # an earlier image's map is no longer wanted
        self.task = self.page.start_task("Explain image", explain, info.path, self._path, method)
        self.task.finished.connect(self._done)
        self.task.ended.connect(self._ended)
        self.page.progress.follow(self.task, f"Computing the {EXPLAIN_INFO[method].label} map…")
        self.bar.set_status(
            f"Computing the {escape(EXPLAIN_INFO[method].label)} map of {escape(Path(self._path).name)}…"
        )
        return self.task

    def _done(self, r: dict) -> None:
        if self.sender() is not self.task or r["image_path"] != self._path or not self.bar.show_button.isChecked():
            return  # another image or method was chosen meanwhile, or the map was switched off
        self.result = r
        caption = f"{EXPLAIN_INFO[r['method']].label} map, over the model's {r['image'].shape[0]} px input"
        self.view.set_layers(r["image"], r["heat"], self.bar.opacity_value(), caption)
        self.bar.set_status(status_html(r), failed=bool(r["sanity"] and not r["sanity"]["passed"]))
        self.bar.export_button.setEnabled(True)

    def _ended(self) -> None:
        if self.sender() is self.task:
            self.task = None  # the task object is deleted once it has ended

    def _toggled(self, on: bool) -> None:
        self.bar.show_button.setText("Hide map" if on else "Show map")
        if on:
            self.run()
            return
        if self.task is not None:
            self.task.cancel()
        self.task, self.result = None, None
        self.view.hide_map()
        self.bar.set_status("")
        self.bar.export_button.setEnabled(False)

    def _method_changed(self, _method: str) -> None:
        if self.bar.show_button.isChecked():
            self.run()

    def _opacity_changed(self, opacity: float) -> None:
        self.view.set_opacity(opacity)

    def export_png(self, path: str | Path) -> Task | None:
        """Write the map shown, at the slider's opacity, on a worker."""
        r = self.result
        if r is None:
            return None
        task = self.page.start_task(
            "Export map", write_png, str(path), r["image"], r["shown"], self.bar.opacity_value()
        )
        task.finished.connect(self._exported)
        return task

    def _exported(self, path: Path) -> None:
        self.page.ctx.state.message.emit(f"Saved the map to {path}")

    def export_dialog(self) -> None:
        if self.result is None:
            return
        name = f"{Path(self.result['image_path']).stem}_{self.result['method']}.png"
        start = str(Path(last_dir(self.page.ctx.settings, "explain")) / name)
        path, _ = QFileDialog.getSaveFileName(self.page, "Export the map", start, "PNG images (*.png)")
        if path:
            remember_dir(self.page.ctx.settings, "explain", path)
            self.export_png(path)
