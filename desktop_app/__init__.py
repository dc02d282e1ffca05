"""HistoGuard desktop app (PySide6 + pyqtgraph) over ``engine.api``."""
