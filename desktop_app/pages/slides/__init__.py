"""The Slides page (``page``), what it runs on workers (``tasks``) and its selected tile (``tiles``)."""

from desktop_app.pages.slides.page import SlidesPage

__all__ = ["SlidesPage"]
