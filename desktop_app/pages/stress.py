"""Stress test page (placeholder until its issue work lands)."""

from __future__ import annotations

from desktop_app.pages.base import Page


class StressPage(Page):
    title = "Stress test"
