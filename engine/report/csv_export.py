"""metrics.csv: one row per evaluation of a report, every metric with its 95% interval (``<metric>_low`` and
``<metric>_high``) and the confusion-matrix cells.

Numbers are written with Python's shortest round-trip repr, so ``float(cell)`` equals report.json's value;
undefined metrics (None) are empty cells. Written atomically (``engine.core.fileio.atomic_open``).
"""

from __future__ import annotations

import csv
import os

from engine.core.fileio import atomic_open
from engine.report.labels import METRICS, attack_kind, condition_key, condition_label, eps_text

COLUMNS = (
    "model",
    "condition",
    "attack_source",
    "attack_kind",
    "eps",
    "eps_k255",
    "level",
    "label",
    *METRICS,
    "recall",
    "majority_baseline",
    "n",
    "tn",
    "fp",
    "fn",
    "tp",
    *(f"{m}_{end}" for m in METRICS for end in ("low", "high")),
)


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def csv_rows(report: dict) -> list[dict[str, str]]:
    """The CSV's rows as strings: image level first, then patient level, each in the study's order."""
    evaluations = sorted(report["evaluations"], key=lambda e: (e["level"] != "image", e["level"], condition_key(e)))
    rows = []
    for e in evaluations:
        (tn, fp), (fn, tp) = e["confusion_matrix"]
        row = {
            "attack_kind": attack_kind(e),
            "eps_k255": eps_text(e["eps"]),
            "label": condition_label(e),
            "tn": tn,
            "fp": fp,
            "fn": fn,
            "tp": tp,
        }
        for m, ci in (e.get("ci") or {}).items():
            if m in METRICS:
                row[f"{m}_low"], row[f"{m}_high"] = ci if ci else (None, None)
        row.update({k: e.get(k) for k in COLUMNS if k not in row})
        rows.append({k: _cell(v) for k, v in row.items()})
    return rows


def write_metrics_csv(path: str | os.PathLike, report: dict) -> None:
    """Write ``path`` (all or nothing: an error leaves any earlier file as it was)."""
    rows = csv_rows(report)
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
