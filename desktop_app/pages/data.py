"""Data page (placeholder until its issue work lands)."""

from __future__ import annotations

from desktop_app.pages.base import Page


class DataPage(Page):
    title = "Data"
