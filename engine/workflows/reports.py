"""A run's report in its folder: the figures (matplotlib), report.md, report.html and report.json, written
together, all or nothing on a write error (a full disk keeps the earlier report whole); report.json is renamed
last, so it marks a finished report even after a kill."""

from __future__ import annotations

from engine.evaluate.figures import draw_figures
from engine.report.write import json_ready, report_texts
from engine.runs.folder import RunFolder


def write_run_report(run: RunFolder, result: dict, extra: dict[str, bytes] | None = None) -> None:
    """``extra``: more files the report shows (the gallery's PNGs, by their names in the run folder)."""
    figures = {**draw_figures(json_ready(result)), **(extra or {})}
    texts = report_texts(result, figures, title=f"HistoGuard report: {run.root.name}")
    run.write_files({**figures, **texts})
