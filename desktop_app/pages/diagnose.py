"""Diagnose page (placeholder until its issue work lands)."""

from __future__ import annotations

from desktop_app.pages.base import Page


class DiagnosePage(Page):
    title = "Diagnose"
