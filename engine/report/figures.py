"""Report figures drawn with matplotlib's Agg backend (no display, no Qt)."""

from __future__ import annotations

import io
from pathlib import Path

from engine.attacks.eps import format_eps
from engine.fileio import write_bytes


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> None:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    write_bytes(path, buffer.getvalue())


def confusion_matrix_png(cm: list[list[int]], classes: list[str], title: str, path: str | Path) -> None:
    """2x2 heatmap with counts and row percentages (true class per row, predicted per column)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(3.6, 3.2))
    ax.imshow(cm, cmap="Blues", vmin=0, vmax=max(1, max(max(r) for r in cm)))
    for i, row in enumerate(cm):
        for j, count in enumerate(row):
            pct = 100 * count / sum(row) if sum(row) else 0
            dark = count > 0.6 * max(max(r) for r in cm)
            ax.text(j, i, f"{count}\n{pct:.1f}%", ha="center", va="center", color="white" if dark else "black")
    ax.set_xticks([0, 1], [f"pred {c}" for c in classes])
    ax.set_yticks([0, 1], [f"true {c}" for c in classes], rotation=90, va="center")
    ax.set_title(title, fontsize=10)
    _save(fig, path)
    plt.close(fig)


def sweep_png(sweep: list[dict], path: str | Path, metric: str = "accuracy") -> None:
    """``metric`` against eps, one line per (model, attack source)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    series: dict[str, list[tuple[float, float]]] = {}
    for row in sweep:
        if row.get(metric) is not None:
            label = f"{row['model']} (FGSM from {row['attack_source']})"
            series.setdefault(label, []).append((row["eps"], row[metric]))
    for label, points in sorted(series.items()):
        points.sort()
        ax.plot([p[0] * 255 for p in points], [p[1] for p in points], marker="o", label=label)
    eps_values = sorted({row["eps"] for row in sweep})
    ax.set_xticks([e * 255 for e in eps_values], [format_eps(e) for e in eps_values])
    ax.set_xlabel("eps (pixel units)")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)
    plt.close(fig)
