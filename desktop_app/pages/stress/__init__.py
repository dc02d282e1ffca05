"""The Stress-test page (``page``: white-box attacks of one image or a set) and its black-box mode (``blackbox``:
the Square attack on an ONNX file, torch-free)."""

from desktop_app.pages.stress.page import StressPage

__all__ = ["StressPage"]
