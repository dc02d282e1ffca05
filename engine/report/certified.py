"""The report's certified-robustness section (Model C trained with Gaussian noise, certified by randomized smoothing
on its ONNX file: ``engine.evaluate.suite.certified_section``) as Markdown and HTML. Torch-free.

The certified accuracy at L2 radius r is the share of the images whose smoothed call is right and certified to at
least r; each radius is also given as the L-inf size it covers (r / sqrt(3 H W), as k/255), which is what the
robustness figure plots beside the attack curves."""

from __future__ import annotations

from html import escape

from engine.report.labels import fmt_ci

HEADER = ("L2 radius", "L∞ equivalent (k/255)", "certified accuracy", "certified balanced accuracy", "n")


def note(section: dict) -> str:
    """What was certified, how, and what the numbers mean, in one paragraph."""
    sha = str(section.get("model_sha256") or "")[:16]
    abstained, n = section.get("abstained", 0), section.get("n_images", 0)
    median = section.get("median_radius")
    median_text = f"; median certified L2 radius {median:.3f}" if median is not None else ""
    return (
        f"Model {section.get('model', 'C')} was trained with Gaussian noise (sigma {section['sigma']:g}). Its ONNX "
        f"file ({section.get('file', '?')}, sha256 {sha}…, {section.get('provider', '?')}) was certified with Cohen et "
        f"al.'s CERTIFY on {section.get('images') or f'{n} test images'}: n0 = {section['n0']} noisy copies choose "
        f"the class, n = {section['n']} more bound its probability at confidence {1 - section['alpha']:.1%} (seed "
        f"{section['seed']}). The certificate holds for the smoothed classifier (the majority call over noisy copies), "
        "not for the plain model. Certified accuracy at radius r: the share of images whose smoothed call is right "
        "and provably cannot change within L2 distance r (pixel units on [0, 1] images). An L2 ball of radius r "
        "holds every L-inf perturbation up to r / sqrt(3 H W), given as k/255: small, so the certified curve lies at "
        f"the left of the attack curves in the robustness figure. {abstained} of {n} images abstained{median_text}. "
        "Model C's rows in the other tables are its base model called without noise, which for a model trained on "
        "noise can be far worse than its smoothed classifier (HistoGuard's predict and Diagnose call the smoothed "
        "one): read this table for Model C."
    )


def table_rows(section: dict) -> list[list[str]]:
    return [
        [
            f"{r['radius']:.3f}",
            f"{r['linf_255']:.2f}/255",
            fmt_ci(r["accuracy"], r.get("ci")),
            fmt_ci(r.get("balanced_accuracy"), r.get("ci_balanced")),
            str(r["n"]),
        ]  # fmt: skip
        for r in section.get("curve", [])
    ]


def markdown(section: dict | None) -> str:
    if not section or not section.get("curve"):
        return ""
    lines = ["## Certified robustness (randomized smoothing)\n", note(section) + "\n"]
    lines += ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in table_rows(section)]
    return "\n".join(lines) + "\n"


def html(section: dict | None) -> str:
    if not section or not section.get("curve"):
        return ""
    head = "".join(f"<th>{escape(h)}</th>" for h in HEADER)
    body = "".join(
        "<tr>" + "".join(f"<td class='num'>{escape(c)}</td>" for c in r) + "</tr>" for r in table_rows(section)
    )
    return (
        "<h2>Certified robustness (randomized smoothing)</h2>"
        f"<p class='note'>{escape(note(section))}</p><table><tr>{head}</tr>{body}</table>"
    )
