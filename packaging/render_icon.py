"""Render resources/histoguard.svg to the PNG icon the installers and the window use.

Run after editing the SVG: ``QT_QPA_PLATFORM=offscreen python packaging/render_icon.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

RESOURCES = Path(__file__).resolve().parents[1] / "resources"


def main(size: int = 256) -> int:
    app = QGuiApplication(sys.argv[:1])  # noqa: F841 (QImage painting needs an application)
    renderer = QSvgRenderer(str(RESOURCES / "histoguard.svg"))
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    renderer.render(painter)
    painter.end()
    return 0 if image.save(str(RESOURCES / "histoguard.png")) else 1


if __name__ == "__main__":
    sys.exit(main())
