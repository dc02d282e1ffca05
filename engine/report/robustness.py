"""The robustness table the way a reviewer reads it (attack, eps, steps, restarts, clean vs robust accuracy,
missed-cancer rate), as rows of text for Markdown, HTML and the desktop app. Torch-free."""

from __future__ import annotations

from html import escape

from engine.core.catalog import attack_label
from engine.report.labels import MIN_EPS_FIGURE, ROBUST_FIGURE, cell, eps_text, fmt

HEADER = ("model", "attack", "threat", "eps", "steps", "restarts", "clean acc", "robust acc", "sens", "spec", "missed")
KIND_ORDER = {"worst-case": 0, "white-box": 1, "black-box": 2, "transfer": 3, "baseline": 4, "strong": 5}
STRONG_NOTE = (
    "The strong evaluation for a model meant for deployment (after AutoAttack): on a fixed subset of the test "
    "images, APGD on cross-entropy and on the margin loss and the Square attack (queries only, so a masked "
    "gradient cannot fool it); the worst case counts an image as right only if it survived all three."
)


def attack_name(row: dict) -> str:
    return attack_label(row["attack"])


def threat(row: dict) -> str:
    if row["kind"] == "strong":
        return f"strong, {row.get('n_images', '?')} images"
    if row["kind"] == "transfer":
        return f"transfer from {row['source']}"
    if row["kind"] == "worst-case":
        return f"every attack ({len(row.get('of', []))})"
    return {"baseline": "random (not an attack)", "black-box": "black-box"}.get(row["kind"], row["kind"])


def clean_accuracy(section: dict) -> dict[str, float | None]:
    return {r["model"]: r["accuracy"] for r in section.get("rows", []) if r["kind"] == "clean"}


def clean_cells(section: dict) -> dict[str, str]:
    """Each model's clean accuracy with its interval, as the tables print it."""
    return {r["model"]: cell(r, "accuracy") for r in section.get("rows", []) if r["kind"] == "clean"}


def _clean_cell(row: dict, clean: dict[str, str]) -> str:
    same = row.get("clean_accuracy_same_images")  # a black-box row's subset
    return fmt(same) if same is not None else clean.get(row["model"], fmt(None))


MAIN_KINDS = ("worst-case", "white-box", "black-box", "baseline")


def sorted_rows(section: dict, kinds: tuple[str, ...] = MAIN_KINDS) -> list[dict]:
    """The report rows of ``kinds`` in table order: by model, threat, source, attack and eps (natural: level)."""
    rows = [r for r in section.get("rows", []) if r["kind"] in kinds]
    if kinds == ("strong",):  # in the order the evaluation ran them: each model's attacks, then its worst case
        return rows
    return sorted(
        rows,
        key=lambda r: (r["model"], KIND_ORDER.get(r["kind"], 9), r.get("source") or "", r["attack"], r["eps"] or 0),
    )


def table_rows(section: dict, kinds: tuple[str, ...] = MAIN_KINDS) -> list[list[str]]:
    """Text cells (see ``HEADER``) of ``sorted_rows(section, kinds)``, one list per row."""
    clean = clean_cells(section)
    rows = sorted_rows(section, kinds)
    return [
        [
            r["model"],
            attack_name(r),
            threat(r),
            eps_text(r["eps"]),
            str(r.get("steps", "")),
            str(r.get("restarts", "")),
            _clean_cell(r, clean),
            cell(r, "accuracy"),
            cell(r, "sensitivity"),
            cell(r, "specificity"),
            cell(r, "missed_cancer_rate"),
        ]
        for r in rows
    ]


def natural_rows(section: dict) -> list[list[str]]:
    clean = clean_cells(section)
    return [
        [
            r["model"],
            attack_name(r),
            str(r["level"]),
            clean.get(r["model"], fmt(None)),
            cell(r, "accuracy"),
            cell(r, "missed_cancer_rate"),
        ]
        for r in sorted_rows(section, ("natural",))
    ]


NATURAL_HEADER = ("model", "perturbation", "level", "clean acc", "accuracy", "missed")
MIN_EPS_HEADER = ("model", "median min eps", "quartiles", "wrong without attack", "not flipped at max")
COMPARE_HEADER = ("models", "condition", "accuracy", "difference (95% CI)", "McNemar p", "right for one only")


def comparison_condition(c: dict) -> str:
    if c["attack"] == "none":
        return "clean"
    if c["attack"] == "worst-case":
        return f"worst case of every attack {eps_text(c['eps'])}"
    return f"{attack_label(c['attack'])} {eps_text(c['eps'])}, white-box on each"


def p_text(p: float | None) -> str:
    return "—" if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}")


def comparison_rows(section: dict) -> list[list[str]]:
    """The paired comparisons (``engine.evaluate.compare``): which model is more accurate on the same images,
    and how sure the data make us."""
    return [
        [
            f"{c['x']} vs {c['y']}",
            comparison_condition(c),
            f"{fmt(c['accuracy_x'])} vs {fmt(c['accuracy_y'])}",
            f"{c['difference']:+.3f}" + (f" ({c['ci'][0]:+.2f} to {c['ci'][1]:+.2f})" if c.get("ci") else "")
            if c["difference"] is not None
            else fmt(None),
            p_text(c["p_value"]),
            f"{c['only_x_right']} / {c['only_y_right']}",
        ]
        for c in section.get("comparisons", [])
    ]


COMPARE_NOTE = (
    "Each pair of models on the same test images: accuracy of the first minus the second, with a patient-level "
    "paired bootstrap interval (both models resampled together), and the exact McNemar test on the images only "
    "one of them gets right (it treats images as independent, so trust the interval where they disagree)."
)


def _k(value, max_k: int) -> str:
    return f">{max_k}/255" if value is None or value > max_k else f"{value:g}/255"


def min_eps_rows(section: dict) -> list[list[str]]:
    out = []
    for model, s in sorted(section.get("min_eps", {}).items()):
        q = s.get("quartiles_255") or [None, None]
        m = s["max_k"]
        out.append(
            [
                model,
                _k(s["median_255"], m),
                f"{_k(q[0], m)} – {_k(q[1], m)}",
                str(s["misclassified_clean"]),
                str(s["not_flipped"]),
            ]
        )
    return out


def markdown(section: dict) -> str:
    if not section or not section.get("rows"):
        return ""
    parts = [
        "## Robustness (white-box on each model's own gradients, black-box on its ONNX file)\n",
        _md_table(HEADER, table_rows(section)),
        "\n### Transfer (adversarial images made on another model)\n",
        _md_table(HEADER, table_rows(section, ("transfer",))),
    ]
    if table_rows(section, ("strong",)):
        parts += ["\n### Strong evaluation\n", STRONG_NOTE + "\n", _md_table(HEADER, table_rows(section, ("strong",)))]
    if natural_rows(section):
        parts += ["\n### Natural perturbations\n", _md_table(NATURAL_HEADER, natural_rows(section))]
    if comparison_rows(section):
        parts += [
            "\n### Paired comparisons\n",
            COMPARE_NOTE + "\n",
            _md_table(COMPARE_HEADER, comparison_rows(section)),
        ]
    if min_eps_rows(section):
        parts += ["\n### Smallest eps that flips each image (PGD)\n", _md_table(MIN_EPS_HEADER, min_eps_rows(section))]
        parts.append(f"\n![minimal eps]({MIN_EPS_FIGURE})")
    parts += ["\n### Gradient-masking checks\n", flags_text(section, bullet="- ")]
    return "\n".join(parts) + "\n"


def flags_text(section: dict, bullet: str = "") -> str:
    flags = section.get("flags", [])
    if not flags:
        return (
            f"{bullet}No warning sign: PGD is at least as strong as FGSM, accuracy falls with eps, and no "
            "transfer, random or black-box attack beat the white-box attacks."
        )
    return "\n".join(f"{bullet}Model {f['model']}: {f['message']}" for f in flags)


def _md_table(header, rows) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(out + ["| " + " | ".join(r) + " |" for r in rows])


def html(section: dict, figures: dict[str, bytes], image) -> str:
    """The HTML section; ``image(png, alt, width)`` embeds a figure."""
    if not section or not section.get("rows"):
        return ""
    flags = section.get("flags", [])
    flag_html = (
        "<ul>"
        + "".join(f"<li class='flag'>Model {escape(f['model'])}: {escape(f['message'])}</li>" for f in flags)
        + "</ul>"
        if flags
        else f"<p>{escape(flags_text(section))}</p>"
    )
    figs = "".join(image(figures[n], n, 420) for n in (ROBUST_FIGURE, MIN_EPS_FIGURE) if n in figures)
    parts = [
        "<h2>Robustness</h2>",
        "<p class='note'>White-box attacks use each model's own gradients; the black-box Square attack queries "
        "only the exported ONNX file. Random noise of the same size shows that an attack is not just noise.</p>",
        _html_table(HEADER, table_rows(section)),
        "<h3>Transfer</h3>",
        _html_table(HEADER, table_rows(section, ("transfer",))),
    ]
    if table_rows(section, ("strong",)):
        parts += [
            "<h3>Strong evaluation</h3>",
            f"<p class='note'>{escape(STRONG_NOTE)}</p>",
            _html_table(HEADER, table_rows(section, ("strong",))),
        ]
    if natural_rows(section):
        parts += ["<h3>Natural perturbations</h3>", _html_table(NATURAL_HEADER, natural_rows(section))]
    if comparison_rows(section):
        parts += [
            "<h3>Paired comparisons</h3>",
            f"<p class='note'>{escape(COMPARE_NOTE)}</p>",
            _html_table(COMPARE_HEADER, comparison_rows(section)),
        ]
    if min_eps_rows(section):
        parts += [
            "<h3>Smallest eps that flips each image (PGD)</h3>",
            _html_table(MIN_EPS_HEADER, min_eps_rows(section)),
        ]
    parts += [figs, "<h3>Gradient-masking checks</h3>", flag_html]
    return "\n".join(parts)


def _html_table(header, rows) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td{' class=num' if i >= 3 else ''}>{escape(c)}</td>" for i, c in enumerate(r)) + "</tr>"
        for r in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"
