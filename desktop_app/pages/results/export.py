"""The Results page's export worker: the engine writes report.html + metrics.csv; a PDF, when asked for, is
printed from that HTML with Qt (QTextDocument + QPdfWriter, no browser engine), so it keeps the figures.

Runs on a worker thread (``Page.start_task``): no widgets here, only QTextDocument and a QPdfWriter on a
QBuffer, which Qt allows off the UI thread. The PDF bytes are written atomically by ``engine.core.fileio``.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QMarginsF, QSizeF
from PySide6.QtGui import QPageLayout, QPageSize, QPdfWriter, QTextDocument

from engine import api
from engine.core.fileio import write_bytes
from engine.core.progress import check_cancel, report


def export_files(result: dict, run_dir: Path, target: Path, *, on_progress=None, cancel=None) -> dict[str, Path]:
    """``target``: a folder or an .html name (HTML + CSV), or a .pdf name (PDF, with the HTML and CSV beside)."""
    pdf = target.suffix.lower() == ".pdf"
    paths = api.export_report(
        result, target.with_suffix(".html") if pdf else target, run_dir=run_dir, on_progress=on_progress, cancel=cancel
    )
    if pdf:
        check_cancel(cancel, "report export")
        report(on_progress, "export report: PDF", 3, 4, unit="steps")
        write_bytes(target, html_to_pdf(paths["html"].read_text(encoding="utf-8")))
        paths = {"pdf": target, **paths}
    return paths


def html_to_pdf(html: str) -> bytes:
    """An A4 landscape PDF of ``html`` (landscape: five confusion matrices fit side by side; data: URI images are
    embedded)."""
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    writer = QPdfWriter(buffer)
    writer.setPageLayout(
        QPageLayout(QPageSize(QPageSize.PageSizeId.A4), QPageLayout.Orientation.Landscape, QMarginsF(12, 12, 12, 12))
    )
    writer.setResolution(110)
    writer.setTitle("HistoGuard report")
    doc = QTextDocument()
    doc.setHtml(html)
    doc.setPageSize(QSizeF(writer.width(), writer.height()))
    doc.print_(writer)
    del writer  # finishes the PDF in the buffer
    buffer.close()
    return bytes(data.data())
