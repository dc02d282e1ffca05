"""Export a run's report: a self-contained report.html (figures embedded) and metrics.csv.

The figures come from the run folder when ``engine.report.write`` already drew them (no matplotlib, no
torch import: an export takes well under a second); missing ones are drawn with matplotlib into a
temporary folder. Every file is written atomically.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from engine.core.errors import ConfigError
from engine.core.fileio import write_text
from engine.core.progress import CancelToken, ProgressCallback, check_cancel, report
from engine.report.csv_export import write_metrics_csv
from engine.report.html import cm_figure_name, render_html
from engine.report.labels import at_level, condition_label

log = logging.getLogger(__name__)
SWEEP_FIGURE = "sweep_accuracy.png"


def output_paths(out: str | Path) -> tuple[Path, Path]:
    """(html, csv) for ``out``: a folder gets report.html and metrics.csv; 'x.html' gets x-metrics.csv beside it."""
    out = Path(out).expanduser()
    if out.suffix.lower() in (".html", ".htm"):
        return out, out.with_name(f"{out.stem}-metrics.csv")
    if out.suffix and not out.is_dir():
        raise ConfigError(f"cannot export a report to {out.name}: give a folder or a file name ending in .html")
    return out / "report.html", out / "metrics.csv"


ROBUST_FIGURE, MIN_EPS_FIGURE = "robustness_accuracy.png", "min_eps.png"


def figure_names(result: dict) -> list[str]:
    names = [cm_figure_name(e) for e in at_level(result["evaluations"], "image")]
    robust = result.get("robustness") or {}
    return (
        names
        + ([SWEEP_FIGURE] if result.get("sweep") else [])
        + ([ROBUST_FIGURE] if robust.get("rows") else [])
        + ([MIN_EPS_FIGURE] if robust.get("min_eps") else [])
    )


def collect_figures(result: dict, run_dir: str | Path | None = None) -> dict[str, bytes]:
    """PNG bytes of the report's figures: read from ``run_dir`` where present, else drawn now."""
    found: dict[str, bytes] = {}
    for name in figure_names(result):
        path = Path(run_dir) / name if run_dir else None
        if path is not None and path.is_file():
            found[name] = path.read_bytes()
    missing = [n for n in figure_names(result) if n not in found]
    if missing:
        log.info("drawing %d report figures that the run folder lacks", len(missing))
        found.update(_draw(result, missing))
    return found


def _draw(result: dict, names: list[str]) -> dict[str, bytes]:
    from engine.report import figures  # matplotlib: only when needed

    classes = result["dataset"]["classes"]
    with tempfile.TemporaryDirectory(prefix="histoguard-figures-") as tmp:
        for e in at_level(result["evaluations"], "image"):
            if cm_figure_name(e) in names:
                figures.confusion_matrix_png(
                    e["confusion_matrix"], classes, condition_label(e), Path(tmp) / cm_figure_name(e)
                )
        if SWEEP_FIGURE in names:
            figures.sweep_png(result["sweep"], Path(tmp) / SWEEP_FIGURE)
        if ROBUST_FIGURE in names:
            figures.robustness_png(result["robustness"], Path(tmp) / ROBUST_FIGURE)
        if MIN_EPS_FIGURE in names:
            figures.min_eps_png(result["robustness"]["min_eps"], Path(tmp) / MIN_EPS_FIGURE)
        return {n: (Path(tmp) / n).read_bytes() for n in names}


def export_report(
    result: dict,
    out: str | Path,
    *,
    run_dir: str | Path | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> dict[str, Path]:
    """Write report.html and metrics.csv for ``result`` (a report.json dict) to ``out`` (see ``output_paths``);
    return {'html': path, 'csv': path}."""
    html_path, csv_path = output_paths(out)
    report(on_progress, "export report: figures", 0, 3, unit="steps")
    figures = collect_figures(result, run_dir)
    check_cancel(cancel, "report export")
    report(on_progress, "export report: HTML", 1, 3, unit="steps")
    title = f"HistoGuard report: {Path(run_dir).name}" if run_dir else "HistoGuard report"
    write_text(html_path, render_html(result, figures, title=title))
    report(on_progress, "export report: CSV", 2, 3, unit="steps")
    write_metrics_csv(csv_path, result)
    report(on_progress, "export report: done", 3, 3, unit="steps")
    log.info("report exported to %s and %s", html_path, csv_path)
    return {"html": html_path, "csv": csv_path}
