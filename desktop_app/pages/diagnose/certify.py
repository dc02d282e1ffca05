"""The Diagnose page's Certify action: randomized-smoothing certificates (``engine.api.certify_files``, onnxruntime
only, so the Diagnose edition runs it too) of the images just predicted, with the model that predicted them.

``certify`` runs on a worker and touches no widgets; ``CertifyAction`` is the UI-thread part: the settings row
(``CertifyForm``: the model's own sigma, or one chosen when it has none; n and alpha), the button, and putting each
certificate into its prediction row (``engine.api.attach_certificates``), which the table then shows and the CSV
export writes.
"""

from __future__ import annotations

from statistics import median

from PySide6.QtCore import QObject

from desktop_app.widgets.certify_form import CertifyForm
from desktop_app.workers import Task
from engine import api
from engine.core.config import CertifyConfig

NOT_READY = "Run a prediction with the chosen model first: the certificates go into its rows"


def certify(model_path, inputs: list, config: CertifyConfig, *, on_progress=None, cancel=None) -> list[dict]:
    """One certificate row per image file (worker)."""
    return api.certify_files(model_path, inputs, config=config, on_progress=on_progress, cancel=cancel)


def certificate_summary(rows: list[dict]) -> str:
    """'6 certified (median L2 radius 0.412), 2 abstained', or '' when no row has a certificate."""
    calls = [r for r in rows if "certified_call" in r]
    if not calls:
        return ""
    radii = [r["certified_radius_l2"] for r in calls if r["certified_call"] != "abstain"]
    text = f"{len(radii)} certified" + (f" (median L2 radius {median(radii):.3f})" if radii else "")
    abstained = len(calls) - len(radii)
    return text + (f", {abstained} abstained" if abstained else "")


class CertifyAction(QObject):
    """Certifies the page's predicted images on a worker (progress and Cancel in the page's progress panel)."""

    def __init__(self, page) -> None:
        super().__init__(page)
        self.page = page
        self.form = CertifyForm("Certify")
        self.task: Task | None = None
        self.form.button.clicked.connect(self.run)

    def model_read(self, info) -> None:
        self.form.set_own_sigma(api.model_sigma(info.meta))

    def ready(self) -> bool:
        p = self.page
        model = p.model_info.path if p.model_info is not None else None
        return bool(p.rows and p.predicting is None and self.task is None and model == p.predicted_with)

    def update(self) -> None:
        ready = self.ready()
        self.form.button.setEnabled(ready)
        self.form.button.setToolTip("" if ready or self.task is not None else NOT_READY)

    def run(self) -> Task | None:
        """Certify the images of the last prediction (the same files, in the same order, as ``histoguard certify``
        would: image i draws its noise from the seed and i)."""
        if not self.ready():
            return None
        p = self.page
        self.task = p.start_task("Certify images", certify, p.predicted_with, p.predicted_inputs, self.form.config())
        p.progress.follow(self.task, "Certifying (randomized smoothing)…")
        self.task.finished.connect(self._certified)
        self.task.cancelled.connect(self._cancelled)
        self.task.ended.connect(self._ended)
        p.update_buttons()
        return self.task

    def _certified(self, certificates: list[dict]) -> None:
        api.attach_certificates(self.page.rows, certificates)
        self.page.show_rows_again()

    def _cancelled(self) -> None:
        self.page.ctx.state.message.emit("Certification cancelled: the table keeps its earlier certificates, if any")

    def _ended(self) -> None:
        self.task = None
        self.page.update_buttons()
