"""The report's gallery (``engine.workflows.gallery`` computes it): per model a few test images called right, called
wrong and flipped by the white-box attack, each beside its attribution map, and whether the maps passed the
randomisation check. report.md links the PNGs in the run folder; report.html embeds them (``files``: their bytes by
name, as the figures)."""

from __future__ import annotations

from html import escape

from engine.core.eps import format_eps

TITLES = {
    "correct": "Called right",
    "wrong": "Called wrong",
    "flipped": "Flipped by the attack (original | its map | adversarial | its map)",
}
WIDTH = 128  # pixels a picture in report.html


def file_names(result: dict) -> list[str]:
    """Every PNG the gallery of ``result`` shows, by its name in the run folder."""
    models = ((result.get("gallery") or {}).get("models") or {}).values()
    return [f for m in models for it in m["items"] for k, f in it["files"].items()]


def intro(g: dict) -> str:
    a, k = g["attack"], g["per_category"]
    return (
        f"A few test images per model, picked at random: {k} called right, {k} called wrong, and up to {k} that "
        f"{a['describe']} at eps {format_eps(a['eps'])} (white-box, the robustness evaluation's attack) flipped, among "
        f"at most {g['pool']} others called right. Each map shows where the evidence for the model's call on its "
        "image lies (on an adversarial image: for the new, wrong call). The randomisation check (Adebayo et al., 2018) "
        "computes the same map on the model with random weights: a rank correlation above "
        f"{g['sanity_threshold']:g} fails it (the map shows the image, not what the model learned)."
    )


def sanity_line(name: str, m: dict) -> str:
    """'Model A, Grad-CAM: 17 of 18 maps passed the randomisation check (median rank correlation 0.12).'"""
    s = m["sanity"]
    if not s["of"]:
        return f"Model {name}: no map."
    median = s["median_rank_correlation"]
    text = f"Model {name}, {m['label']}: {s['passed']} of {s['of']} maps passed the randomisation check"
    text += f" (median rank correlation with the randomised model {median:.2f})" if median is not None else ""
    if flat := s.get("flat", 0):
        text += f"; {flat} flat (no evidence to rank: inconclusive)"
    if s["passed"] + flat < s["of"]:
        text += "; the maps that failed show the image more than the model"
    return text + "."


def caption(it: dict) -> str:
    text = f"{it['name']}: {it['label']}, called {it['predicted']} (p = {it['p_predicted']:.2f})"
    if "predicted_adversarial" in it:
        text += f"; attacked: {it['predicted_adversarial']} (p = {it['p_adversarial']:.2f})"
    s = it["sanity"]
    return text + ("" if s is None else f"; map {'passed' if s['passed'] else 'FAILED'} ({s['rank_correlation']:.2f})")


def markdown(g: dict | None) -> str:
    if not g:
        return ""
    lines = ["## Explanations: a gallery of test images\n", intro(g) + "\n"]
    lines += [f"- {sanity_line(n, m)}" for n, m in g["models"].items()]
    for name, m in g["models"].items():
        lines.append(f"\n### Model {name}\n")
        lines.append(f"{m['attacked']} images attacked for the flipped ones.\n")
        for category, title in TITLES.items():
            items = [it for it in m["items"] if it["category"] == category]
            lines.append(f"**{title}**" + ("" if items else ": none found") + "\n")
            lines += [" ".join(f"![{k}]({f})" for k, f in it["files"].items()) + f"  \n{caption(it)}\n" for it in items]
    return "\n".join(lines) + "\n"


def html(g: dict | None, files: dict[str, bytes], image) -> str:
    """The section; ``image(png, alt, width)`` embeds a picture (``engine.report.html._image``)."""
    if not g:
        return ""
    parts = ["<h2>Explanations: a gallery of test images</h2>", f'<p class="note">{escape(intro(g))}</p>', "<ul>"]
    for name, m in g["models"].items():
        failed = m["sanity"]["passed"] < m["sanity"]["of"]
        flag = ' class="flag"' if failed else ""
        parts.append(f"<li{flag}>{escape(sanity_line(name, m))}</li>")
    parts.append("</ul>")
    for name, m in g["models"].items():
        parts.append(f"<h3>Model {escape(name)}</h3>")
        for category, title in TITLES.items():
            items = [it for it in m["items"] if it["category"] == category]
            parts.append(f"<p><b>{escape(title)}</b>{'' if items else ': none found'}</p>")
            rows = []
            for it in items:
                pictures = "".join(
                    f"<td>{image(files[f], f'{k}: ' + it['name'], WIDTH)}</td>"
                    for k, f in it["files"].items()
                    if f in files
                )
                rows.append(f"<tr>{pictures}<td class='note'>{escape(caption(it))}</td></tr>")
            parts.append('<table class="row">' + "".join(rows) + "</table>" if rows else "")
    return "\n".join(p for p in parts if p)
