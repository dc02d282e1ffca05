"""Export a run's report: a self-contained report.html (figures embedded) and metrics.csv. Torch-free and
matplotlib-free: the figures come from the run folder, where the experiment drew them; a caller with matplotlib
may pass ``draw`` for the ones a folder lacks (``engine.api.export_report`` does). Files are written atomically.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from engine.core.errors import ConfigError
from engine.core.fileio import write_text
from engine.core.progress import CancelToken, ProgressCallback, check_cancel, report
from engine.report.csv_export import write_metrics_csv
from engine.report.gallery import file_names as gallery_files
from engine.report.html import render_html
from engine.report.labels import figure_names

log = logging.getLogger(__name__)


def output_paths(out: str | Path) -> tuple[Path, Path]:
    """(html, csv) for ``out``: a folder gets report.html and metrics.csv; 'x.html' gets x-metrics.csv beside it."""
    out = Path(out).expanduser()
    if out.suffix.lower() in (".html", ".htm"):
        return out, out.with_name(f"{out.stem}-metrics.csv")
    if out.suffix and not out.is_dir():
        raise ConfigError(f"cannot export a report to {out.name}: give a folder or a file name ending in .html")
    return out / "report.html", out / "metrics.csv"


Draw = Callable[[dict, list[str]], dict[str, bytes]]  # (report, names) -> PNG bytes (engine.evaluate.figures)


def collect_figures(result: dict, run_dir: str | Path | None = None, draw: Draw | None = None) -> dict[str, bytes]:
    """PNG bytes of the report's figures: read from ``run_dir`` where present; the others drawn with ``draw``
    when given (the full edition has matplotlib), else left out (their numbers are in the tables)."""
    found: dict[str, bytes] = {}
    for name in figure_names(result):
        path = Path(run_dir) / name if run_dir else None
        if path is not None and path.is_file():
            found[name] = path.read_bytes()
    for name in gallery_files(result) if run_dir else ():  # the gallery's PNGs: only the run folder has them
        if (Path(run_dir) / name).is_file():
            found[name] = (Path(run_dir) / name).read_bytes()
    missing = [n for n in figure_names(result) if n not in found]
    if missing and draw is not None:
        log.info("drawing %d report figures that the run folder lacks", len(missing))
        found.update(draw(result, missing))
    elif missing:
        log.warning("%d figure(s) are not in the run folder and cannot be drawn here: %s", len(missing), missing)
    return found


def export_report(
    result: dict,
    out: str | Path,
    *,
    run_dir: str | Path | None = None,
    draw: Draw | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> dict[str, Path]:
    """Write report.html and metrics.csv for ``result`` (a report.json dict) to ``out`` (see ``output_paths``);
    return {'html': path, 'csv': path}. Figures: see ``collect_figures``."""
    html_path, csv_path = output_paths(out)
    report(on_progress, "export report: figures", 0, 3, unit="steps")
    figures = collect_figures(result, run_dir, draw)
    check_cancel(cancel, "report export")
    report(on_progress, "export report: HTML", 1, 3, unit="steps")
    title = f"HistoGuard report: {Path(run_dir).name}" if run_dir else "HistoGuard report"
    write_text(html_path, render_html(result, figures, title=title))
    report(on_progress, "export report: CSV", 2, 3, unit="steps")
    write_metrics_csv(csv_path, result)
    report(on_progress, "export report: done", 3, 3, unit="steps")
    log.info("report exported to %s and %s", html_path, csv_path)
    return {"html": html_path, "csv": csv_path}
