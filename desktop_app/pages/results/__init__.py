"""The Results page (``page``) and its report export (``export``: HTML, CSV and a PDF printed by Qt)."""

from desktop_app.pages.results.page import ResultsPage

__all__ = ["ResultsPage"]
