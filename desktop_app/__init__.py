"""HistoGuard desktop app (PySide6 + pyqtgraph) over ``engine.api``.

Like ``engine``, it sets ``ORT_DISABLE_TELEMETRY`` first, so no import order in the app can let onnxruntime
write its telemetry files (onnxruntime >= 1.29 does on import unless the variable is set before).
"""

import os

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
