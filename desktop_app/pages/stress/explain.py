"""The Stress page's maps of one attacked image: the original and the adversarial image side by side, each with its
attribution map for the original's call, and how the map changed (``engine.api.explain_attack``, white-box: the
checkpoint the attack used).

``explain_pair`` runs on a worker and touches no widgets; ``ExplainMode`` is the UI-thread part (the "Maps" tab).
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from PySide6.QtCore import QObject

from desktop_app.widgets.attention_pair import AttentionPair
from desktop_app.widgets.triptych import eps_caption
from desktop_app.workers import Task
from engine import api
from engine.core.catalog import EXPLAIN_INFO


def explain_pair(checkpoint: str, original, adversarial, method: str, *, on_progress=None, cancel=None) -> dict:
    """Both maps, their comparison in words and the colours of the three pictures (worker)."""
    r = api.explain_attack(checkpoint, original, adversarial, method=method, on_progress=on_progress, cancel=cancel)
    return {
        **r, "heat_original": api.heat_rgba(r["original"]["shown"]),
        "heat_adversarial": api.heat_rgba(r["adversarial"]["shown"]),
        "heat_difference": api.difference_rgba(r["original"]["shown"], r["adversarial"]["shown"]),
        "moved_text": api.moved_text(r["comparison"]), "attention_moved": api.attention_moved(r["comparison"]),
    }  # fmt: skip


class ExplainMode(QObject):
    def __init__(self, page) -> None:
        super().__init__(page)
        self.page = page
        self.view = AttentionPair(min_size=200)
        self.view.clear("Attack one image first (the One image tab), then click Explain both.")
        self.view.run_button.setEnabled(False)
        self.view.run_button.clicked.connect(self.run)
        self.attack: dict | None = None  # the one-image result the maps are of
        self.task: Task | None = None

    def attack_done(self, result: dict) -> None:
        """A new one-image result: its maps are to be computed (the old ones are of another image)."""
        self.attack = result
        self.view.clear(f"{Path(result['image_path']).name}: click Explain both to compare the two maps.")
        self.view.run_button.setEnabled(True)

    def run(self) -> Task | None:
        r = self.attack
        if r is None or self.page.task is not None:  # one task at a time on this page
            return None
        method = self.view.current_method()
        self.task = self.page.start_task(
            "Explain the attack", explain_pair, r["model"], r["original"], r["adversarial"], method
        )
        self.task.finished.connect(self._done)
        self.view.clear(f"Computing the {EXPLAIN_INFO[method].label} maps of {Path(r['image_path']).name}…")
        return self.page._follow(self.task, f"{EXPLAIN_INFO[method].label} maps of the original and adversarial image…")

    def _done(self, result: dict) -> None:
        if self.sender() is not self.task or self.attack is None:
            return
        a = self.attack
        title = f"<b>{escape(Path(a['image_path']).name)}</b>, {escape(a['method'].upper())} {escape(eps_caption(a))}"
        self.view.set_result(result, title)
