"""HistoGuard engine, with no Qt. Torch-free: ``core``, ``data``, ``runs``, ``deploy``, ``slides``, ``report`` (what
the Diagnose edition runs); with PyTorch: ``models``, ``attacks``, ``train``, ``evaluate``, ``export``, ``workflows``.
``api`` is the one facade of the CLI (``cli``) and the desktop app; README.md's Development section has the map.

onnxruntime (>= 1.29) writes telemetry files when it is imported unless ``ORT_DISABLE_TELEMETRY`` is
set first, so the engine sets it before anything can import onnxruntime.
"""

from __future__ import annotations

import os

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
