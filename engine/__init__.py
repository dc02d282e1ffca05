"""HistoGuard engine: data, models, attacks, training, evaluation and export, with no Qt.

onnxruntime (>= 1.29) writes telemetry files when it is imported unless ``ORT_DISABLE_TELEMETRY`` is
set first, so the engine sets it before anything can import onnxruntime.
"""

from __future__ import annotations

import os

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
