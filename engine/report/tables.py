"""Plain-text and Markdown tables of a run's results."""

from __future__ import annotations

from engine.core.eps import format_eps
from engine.report.labels import METRICS, condition_label

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


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def rows(evaluations: list[dict], level: str) -> list[list[str]]:
    return [
        [condition_label(e), *(_fmt(e[c]) for c in COLUMNS), str(e["n"])] for e in evaluations if e["level"] == level
    ]


def text_table(evaluations: list[dict], level: str = "image") -> str:
    header = ["condition", *(SHORT[c] for c in COLUMNS), "n"]
    body = rows(evaluations, level)
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
        acc = {r["eps"]: r["accuracy"] for r in sweep if (r["model"], r["attack_source"]) == (m, s)}
        out.append(f"| {m} (from {s}) | " + " | ".join(_fmt(acc.get(e)) for e in eps_values) + " |")
    return "\n".join(out)
