"""The calibration section of a report as text cells for Markdown, HTML and the desktop app. Torch-free."""

from __future__ import annotations

from html import escape

from engine.report.labels import COVERAGE_FIGURE, RELIABILITY_FIGURE, fmt

HEADER = (
    "model",
    "temperature",
    "ECE validation",
    "ECE test",
    "Brier test",
    "review band",
    "flagged (test)",
    "accuracy of the rest",
)
NOTE = (
    "Temperature scaling divides a model's logits by one number T, fitted on the validation split's clean images, "
    "before the softmax: no call changes (accuracy, sensitivity and the attacks are the same), only how sure the "
    "probabilities say the model is. ECE: the mean gap between predicted and observed malignancy over 10 bins of "
    "p(positive) (0 = calibrated); Brier: the mean squared error of p(positive). Each 'raw → calibrated', with the "
    "calibrated value's 95% patient-level interval (ECE's leans high: binned ECE is biased upward on small "
    "samples). Calls with p(positive) inside the review band are flagged "
    "'uncertain' for a pathologist; the coverage curve shows what referring the least confident calls buys."
)


def _metric(split: dict | None, key: str) -> str:
    if not split:
        return fmt(None)
    raw, cal = split["raw"], split["calibrated"]
    ci = cal.get("ci", {}).get(key)
    interval = f" ({ci[0]:.3f}–{ci[1]:.3f})" if ci else ""
    return f"{fmt(raw[key])} → {fmt(cal[key])}{interval}"


def _temperature(entry: dict) -> str:
    fit = entry.get("fit") or {}
    if not fit:
        return "— (not calibrated)"
    return f"{entry['temperature']:.2f}" + ("" if fit.get("fitted", True) else " (not fitted)")


def table_rows(section: dict) -> list[list[str]]:
    rows = []
    for model, e in section.items():
        band = e.get("review_band") or {}
        low, high = band.get("band", (None, None))
        rows.append(
            [
                model,
                _temperature(e),
                _metric(e.get("val"), "ece"),
                _metric(e.get("test"), "ece"),
                _metric(e.get("test"), "brier"),
                f"{low:.2f}–{high:.2f}" if low is not None else "—",
                f"{band.get('flagged', 0)} of {band.get('n', 0)}",
                f"{fmt(band.get('accuracy_kept'))} (all: {fmt(band.get('accuracy_all'))})",
            ]
        )
    return rows


def notes(section: dict) -> list[str]:
    """The fit's own notes (not fitted, or at the edge of the range): one line per note, naming its models."""
    by_note: dict[str, list[str]] = {}
    for model, e in section.items():
        note = (e.get("fit") or {}).get("note")
        if note:
            by_note.setdefault(note, []).append(model)
    return [f"Model{'s' if len(m) > 1 else ''} {', '.join(m)}: {note}" for note, m in by_note.items()]


def markdown(section: dict) -> str:
    if not section:
        return ""
    head = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    body = ["| " + " | ".join(r) + " |" for r in table_rows(section)]
    parts = ["## Calibration (clean images)\n", NOTE + "\n", "\n".join(head + body)]
    if notes(section):
        parts.append("\n" + "\n".join(f"- {n}" for n in notes(section)))
    parts.append(f"\n![reliability]({RELIABILITY_FIGURE}) ![coverage]({COVERAGE_FIGURE})")
    return "\n".join(parts) + "\n"


def html(section: dict, figures: dict[str, bytes], image) -> str:
    """The HTML section; ``image(png, alt, width)`` embeds a figure."""
    if not section:
        return ""
    head = "".join(f"<th>{escape(h)}</th>" for h in HEADER)
    body = "".join(
        "<tr>" + "".join(f"<td{' class=num' if i else ''}>{escape(c)}</td>" for i, c in enumerate(r)) + "</tr>"
        for r in table_rows(section)
    )
    figs = "".join(image(figures[n], n, 420) for n in (RELIABILITY_FIGURE, COVERAGE_FIGURE) if n in figures)
    note_html = "".join(f"<li>{escape(n)}</li>" for n in notes(section))
    return "\n".join(
        [
            "<h2>Calibration (clean images)</h2>",
            f"<p class='note'>{escape(NOTE)}</p>",
            f"<table><tr>{head}</tr>{body}</table>",
            f"<ul>{note_html}</ul>" if note_html else "",
            figs,
        ]
    )
