"""Results page (placeholder until its issue work lands)."""

from __future__ import annotations

from desktop_app.pages.base import Page


class ResultsPage(Page):
    title = "Results"

    def export_report_dialog(self) -> None:
        pass
