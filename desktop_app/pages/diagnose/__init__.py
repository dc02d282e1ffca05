"""The Diagnose page (``page``) and its selected image (``preview``: the verdict, the details a reviewer needs,
the image as the model saw it)."""

from desktop_app.pages.diagnose.page import DiagnosePage

__all__ = ["DiagnosePage"]
