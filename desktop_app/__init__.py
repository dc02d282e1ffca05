"""HistoGuard desktop app (PySide6 + pyqtgraph) over ``engine.api``."""

from __future__ import annotations

import sys


def launch() -> int:
    """Open the desktop app. It is not built yet: say so and point to the command line."""
    print("The HistoGuard desktop app is not available in this version yet; the command line is.\n"
          "Run `histoguard --help` for the commands, or `histoguard demo` for the whole study on synthetic data.",
          file=sys.stderr)
    return 0
