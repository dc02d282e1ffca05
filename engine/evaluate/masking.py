"""Warning signs of gradient masking (false robustness), after Athalye, Carlini & Wagner (ICML 2018) and
Carlini et al., "On evaluating adversarial robustness" (2019): a model whose gradients hide its weakness
looks robust to white-box attacks but not to attacks that do not need its gradients.

Flags (per model): a black-box or transfer attack beats the white-box one; robust accuracy does not fall
as eps grows; iterative PGD is weaker than one-step FGSM; random noise of the same size hurts more than
the attack. Each flag names the evidence; a flag is a reason to look closer, not a verdict.
"""

from __future__ import annotations

TOL = 0.03  # differences in accuracy below this are noise on a test set of a few hundred images


def masking_flags(rows: list[dict], tol: float = TOL) -> list[dict]:
    """Flags from the robustness rows (see ``engine.evaluate.robustness``) and black-box rows."""
    flags: list[dict] = []
    wb = {(r["model"], r["attack"], r["eps"]): r["accuracy"] for r in rows if r["kind"] == "white-box"}
    for model in sorted({r["model"] for r in rows}):
        flags += _not_decreasing(model, wb, tol) + _pgd_vs_fgsm(model, wb, tol)
    for r in rows:
        if r["kind"] in ("transfer", "baseline", "black-box") and r.get("eps"):
            best = min((a for (m, _, e), a in wb.items() if m == r["model"] and e == r["eps"]), default=None)
            ref = r.get("white_box_accuracy_same_images")  # black-box rows may run on a subset
            ref = best if ref is None else ref
            if ref is None:  # said, so that "no warning sign" is never claimed for a comparison not made
                flags.append(_not_compared(r))
            elif r["accuracy"] is not None and r["accuracy"] < ref - tol:
                flags.append(_flag(r["model"], f"{r['kind'].replace('-', '')}_beats_white_box", r, ref))
    return flags


def _not_compared(r: dict) -> dict:
    return {
        "model": r["model"],
        "flag": "not_compared",
        "message": f"{r['attack']} at {r['eps'] * 255:.3g}/255 could not be compared with a white-box attack at the "
        "same eps (none was run there): add that eps to the sweep to check it",
    }


def _not_decreasing(model: str, wb: dict, tol: float) -> list[dict]:
    out = []
    for attack in sorted({a for (m, a, _) in wb if m == model}):
        curve = sorted((e, acc) for (m, a, e), acc in wb.items() if m == model and a == attack and acc is not None)
        for (e1, a1), (e2, a2) in zip(curve, curve[1:]):
            if a2 > a1 + tol:
                out.append(
                    {
                        "model": model,
                        "flag": "accuracy_rises_with_eps",
                        "message": f"{attack} accuracy rises from {a1:.3f} at {e1 * 255:.3g}/255 to {a2:.3f} at "
                        f"{e2 * 255:.3g}/255; a stronger attack should never do less harm",
                    }
                )
    return out


def _pgd_vs_fgsm(model: str, wb: dict, tol: float) -> list[dict]:
    out = []
    for (m, a, e), acc in wb.items():
        fgsm = wb.get((m, "fgsm", e))
        if m == model and a == "pgd" and fgsm is not None and acc is not None and acc > fgsm + tol:
            out.append(
                {
                    "model": model,
                    "flag": "pgd_weaker_than_fgsm",
                    "message": f"PGD leaves {acc:.3f} accuracy at {e * 255:.3g}/255 but one-step FGSM {fgsm:.3f}",
                }
            )
    return out


def _flag(model: str, code: str, r: dict, ref: float) -> dict:
    src = f" from {r['source']}" if r.get("source") else ""
    return {
        "model": model,
        "flag": code,
        "message": f"{r['attack']}{src} at {r['eps'] * 255:.3g}/255 leaves {r['accuracy']:.3f} accuracy, below the "
        f"strongest white-box attack's {ref:.3f}: the white-box evaluation underestimates the threat",
    }
