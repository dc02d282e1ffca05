"""Report figures drawn with matplotlib's Agg backend (no display, no Qt). Full edition only: the Diagnose
edition ships without matplotlib and reads the figures a run folder already holds (``engine.report.export``)."""

from __future__ import annotations

import io
from pathlib import Path

from engine.core.eps import format_eps
from engine.core.fileio import write_bytes
from engine.report.labels import (
    COVERAGE_FIGURE,
    MIN_EPS_FIGURE,
    RELIABILITY_FIGURE,
    ROBUST_FIGURE,
    SWEEP_FIGURE,
    at_level,
    cm_figure_name,
    condition_label,
    figure_names,
)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path | None) -> bytes:
    """The figure as PNG bytes, also written (atomically) to ``path`` if given; closes the figure."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt  # imported by _pyplot() already

    plt.close(fig)
    if path is not None:
        write_bytes(path, buffer.getvalue())
    return buffer.getvalue()


def confusion_matrix_png(cm: list[list[int]], classes: list[str], title: str, path: str | Path | None = None) -> bytes:
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
    return _save(fig, path)


def _band(ax, points: list[tuple], colour) -> None:
    """The 95% interval of a curve's points as a shaded band (points: (eps, value, [low, high] or None))."""
    pts = [(e, ci) for e, _, ci in points if ci]
    if len(pts) >= 2:
        x = [e * 255 for e, _ in pts]
        ax.fill_between(x, [ci[0] for _, ci in pts], [ci[1] for _, ci in pts], color=colour, alpha=0.12, lw=0)


def _ci(row: dict, key: str):
    return (row.get("ci") or {}).get(key)


def sweep_png(sweep: list[dict], path: str | Path | None = None, metric: str = "accuracy") -> bytes:
    """``metric`` against eps, one line per (model, attack source), its 95% interval as a band."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    series: dict[str, list[tuple]] = {}
    for row in sweep:
        if row.get(metric) is not None:
            label = f"{row['model']} (FGSM from {row['attack_source']})"
            series.setdefault(label, []).append((row["eps"], row[metric], _ci(row, metric)))
    for label, points in sorted(series.items()):
        points.sort(key=lambda p: p[0])
        (line,) = ax.plot([p[0] * 255 for p in points], [p[1] for p in points], marker="o", label=label)
        _band(ax, points, line.get_color())
    eps_values = sorted({row["eps"] for row in sweep})
    ax.set_xticks([e * 255 for e in eps_values], [format_eps(e) for e in eps_values])
    ax.set_xlabel("eps (pixel units)")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def robustness_png(section: dict, path: str | Path | None = None, certified: dict | None = None) -> bytes:
    """White-box accuracy against eps per model and attack (solid), with the random-noise baseline (dotted);
    the 95% interval of each model's strongest attack (the last in the plan: PGD by default) as a band; and, with
    a ``certified`` section, the certified accuracy against the L-inf size its L2 radii cover (black, dash-dot)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    clean = {r["model"]: (r["accuracy"], _ci(r, "accuracy")) for r in section["rows"] if r["kind"] == "clean"}
    series: dict[tuple[str, str, str], list[tuple]] = {}
    for r in section["rows"]:
        if r["kind"] in ("white-box", "baseline") and r["accuracy"] is not None:
            series.setdefault((r["model"], r["attack"], r["kind"]), []).append(
                (r["eps"], r["accuracy"], _ci(r, "accuracy"))
            )
    colours = dict(zip(sorted(clean), plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    styles = {"fgsm": "--", "pgd": "-", "apgd": "-.", "bim": (0, (3, 1, 1, 1))}
    banded = (section.get("plan") or {}).get("attacks", ["pgd"])[-1:]
    for (model, attack, kind), pts in sorted(series.items()):
        start = [(0.0, *clean[model])] if clean.get(model, (None,))[0] is not None else []
        pts = sorted(start + pts, key=lambda p: p[0])
        if kind != "baseline" and attack in banded:
            _band(ax, pts, colours.get(model))
        ax.plot(
            [p[0] * 255 for p in pts],
            [p[1] for p in pts],
            linestyle=":" if kind == "baseline" else styles.get(attack, "-"),
            marker="o" if kind != "baseline" else None,
            color=colours.get(model),
            label=f"{model}: {attack}",
        )
    if certified and certified.get("curve"):
        _certified_curve(ax, certified)
    eps_values = sorted({0.0} | {r["eps"] for r in section["rows"] if r["kind"] == "white-box"})
    ax.set_xticks([e * 255 for e in eps_values], [format_eps(e) for e in eps_values])
    ax.set_xlabel("eps (pixel units)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return _save(fig, path)


def _certified_curve(ax, certified: dict) -> None:
    """Certified accuracy against the L-inf size (k/255) its L2 radii cover: black, dash-dotted."""
    pts = [(r["linf_255"] / 255, r["accuracy"], r.get("ci")) for r in certified["curve"] if r["accuracy"] is not None]
    x, y = [p[0] * 255 for p in pts], [p[1] for p in pts]  # its intervals are in the report's table
    label = f"{certified.get('model', 'C')}: certified (sigma {certified['sigma']:g}, L2 radius as L∞)"
    ax.plot(x, y, color="black", lw=2, ls="-.", marker="P", markersize=5, label=label)


def min_eps_png(min_eps: dict, path: str | Path | None = None) -> bytes:
    """Distribution of the smallest flipping eps per model (bars per k/255; '>max' for unflipped images)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 3.2))
    models = sorted(min_eps)
    width = 0.8 / max(len(models), 1)
    for i, model in enumerate(models):
        s = min_eps[model]
        ks = list(range(1, s["max_k"] + 1))
        counts = [s["histogram"].get(str(k), 0) for k in ks] + [s["not_flipped"]]
        ax.bar([k + (i - (len(models) - 1) / 2) * width for k in ks + [s["max_k"] + 1]], counts, width, label=model)
    max_k = max((min_eps[m]["max_k"] for m in models), default=16)
    ticks = list(range(1, max_k + 2, max(1, max_k // 8)))
    ax.set_xticks(ticks, [f">{max_k}" if t == max_k + 1 else str(t) for t in ticks])
    ax.set_xlabel("smallest eps that flips the prediction (k/255)")
    ax.set_ylabel("images")
    ax.legend(fontsize=8, title="model")
    return _save(fig, path)


def reliability_png(section: dict, path: str | Path | None = None, split: str = "test") -> bytes:
    """Observed share of positive images against mean p(positive) per bin, one colour per model: the model's
    own probabilities dashed, calibrated solid; the diagonal is perfect calibration. Marker area ~ images."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.6, 4.0))
    ax.plot([0, 1], [0, 1], color="#777777", lw=1, ls=":", label="perfectly calibrated")
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (model, entry) in enumerate(section.items()):
        for kind, style in (("raw", "--"), ("calibrated", "-")):
            bins = [b for b in (entry.get(split) or {}).get(kind, {}).get("reliability", []) if b["n"]]
            if not bins:
                continue
            x, y = [b["mean_predicted"] for b in bins], [b["observed"] for b in bins]
            ax.plot(x, y, ls=style, color=colours[i % len(colours)], lw=1.5, alpha=0.9 if kind == "calibrated" else 0.6,
                    label=f"{model} ({'calibrated' if kind == 'calibrated' else 'raw'})")  # fmt: skip
            ax.scatter(
                x, y, s=[8 + 40 * b["n"] / max(c["n"] for c in bins) for b in bins], color=colours[i % len(colours)]
            )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean predicted p(positive)")
    ax.set_ylabel("observed share positive")
    ax.set_title(f"Reliability ({split} split)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return _save(fig, path)


def coverage_png(section: dict, path: str | Path | None = None) -> bytes:
    """Accuracy of the most confident calls against the share kept (test split, calibrated probabilities)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.6, 3.4))
    for model, entry in section.items():
        curve = (entry.get("selective") or {}).get("calibrated") or []
        if curve:
            (line,) = ax.plot([c["coverage"] for c in curve], [c["accuracy"] for c in curve], marker=".", label=model)
            band = entry.get("review_band") or {}
            if band.get("coverage") is not None and band.get("accuracy_kept") is not None:
                ax.scatter(
                    [band["coverage"]], [band["accuracy_kept"]], s=60, marker="*", color=line.get_color(), zorder=3
                )
    ax.set_xlim(1.02, 0)  # from all calls kept (left) to the most confident few (right)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("coverage (share of calls kept; the rest referred)")
    ax.set_ylabel("accuracy of the kept calls")
    ax.set_title("Coverage against accuracy (★: the review band)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, title="model")
    return _save(fig, path)


def draw_figures(result: dict, names: list[str] | None = None) -> dict[str, bytes]:
    """PNG bytes of the report's figures (``names``: only those; default: every figure the report has)."""
    wanted = set(figure_names(result) if names is None else names)
    classes = result["dataset"]["classes"]
    out: dict[str, bytes] = {}
    for e in at_level(result["evaluations"], "image"):
        if cm_figure_name(e) in wanted:
            out[cm_figure_name(e)] = confusion_matrix_png(e["confusion_matrix"], classes, condition_label(e))
    robust = result.get("robustness") or {}
    if SWEEP_FIGURE in wanted:
        out[SWEEP_FIGURE] = sweep_png(result["sweep"])
    if ROBUST_FIGURE in wanted:
        out[ROBUST_FIGURE] = robustness_png(robust, certified=result.get("certified"))
    if MIN_EPS_FIGURE in wanted:
        out[MIN_EPS_FIGURE] = min_eps_png(robust["min_eps"])
    if RELIABILITY_FIGURE in wanted:
        out[RELIABILITY_FIGURE] = reliability_png(result["calibration"])
    if COVERAGE_FIGURE in wanted:
        out[COVERAGE_FIGURE] = coverage_png(result["calibration"])
    return out
