"""Plain-text and Markdown tables of a run's results."""

from __future__ import annotations

from engine.core.eps import format_eps
from engine.report.labels import METRICS, NO_INTERVAL, cell, condition_label, fmt_ci

COLUMNS = METRICS
SHORT = {
    "accuracy": "acc",
    "balanced_accuracy": "bal.acc",
    "sensitivity": "sens",
    "specificity": "spec",
    "precision": "prec",
    "f1": "F1",
    "roc_auc": "AUC",
    "missed_cancer_rate": "missed",
}


def rows(evaluations: list[dict], level: str) -> list[list[str]]:
    """One row of cells per condition at ``level``: each metric with its interval, '0.84 (0.79–0.88)'."""
    return [
        [condition_label(e), *(cell(e, c) for c in COLUMNS), str(e["n"])] for e in evaluations if e["level"] == level
    ]


def _text_rows(evaluations: list[dict], level: str) -> list[list[str]]:
    """Two lines per condition for a terminal: the values, and their intervals below them."""
    out = []
    for e in (e for e in evaluations if e["level"] == level):
        ci = e.get("ci") or {}
        out.append([condition_label(e), *("—" if e[c] is None else f"{e[c]:.3f}" for c in COLUMNS), str(e["n"])])
        if ci:
            out.append(["", *(_text_ci(e, ci, c) for c in COLUMNS), ""])
    return out


def _text_ci(e: dict, ci: dict, key: str) -> str:
    if ci.get(key):
        return f"({ci[key][0]:.2f}–{ci[key][1]:.2f})"
    return NO_INTERVAL if key in ci and e.get(key) is not None else ""


def text_table(evaluations: list[dict], level: str = "image") -> str:
    """The conditions at ``level`` for the terminal, each metric's 95% interval on the line below it."""
    header = ["condition", *(SHORT[c] for c in COLUMNS), "n"]
    body = _text_rows(evaluations, level)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))  # noqa: E731
    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in body)])


def markdown_table(evaluations: list[dict], level: str) -> str:
    header = ["condition", *(SHORT[c] for c in COLUMNS), "n"]
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows(evaluations, level)]
    return "\n".join(out)


def sweep_markdown(sweep: list[dict]) -> str:
    eps_values = sorted({r["eps"] for r in sweep})
    pairs = sorted({(r["model"], r["attack_source"]) for r in sweep})
    out = [
        "| model (FGSM from) | " + " | ".join(format_eps(e) for e in eps_values) + " |",
        "|---|" + "---|" * len(eps_values),
    ]
    for m, s in pairs:
        acc = {r["eps"]: r for r in sweep if (r["model"], r["attack_source"]) == (m, s)}
        out.append(f"| {m} (from {s}) | " + " | ".join(_sweep_cell(acc.get(e)) for e in eps_values) + " |")
    return "\n".join(out)


def _sweep_cell(row: dict | None) -> str:
    return fmt_ci(None) if row is None else cell(row, "accuracy")
