"""Cross-validation over patient-disjoint folds: the summary of K fold reports (mean and sample sd of every
figure over the folds, with each fold's value) and its text for cv.md, the CLI and the app. Torch-free.

The mean ± sd over folds says how much a result moves with the choice of test patients, which one test split
cannot; the per-fold values are kept so nobody has to trust the mean. Each fold's own report has its
patient-level bootstrap intervals.
"""

from __future__ import annotations

import numpy as np

from engine.core.catalog import attack_label
from engine.core.eps import format_eps
from engine.report.labels import METRICS, at_level, condition_label, fmt

ROBUST_KEYS = ("accuracy", "missed_cancer_rate")


def spread(values: list) -> dict:
    """{"values", "mean", "sd"} over the folds where the value is defined (sd: ddof 1; None with < 2 folds)."""
    kept = [float(v) for v in values if v is not None]
    return {
        "values": [None if v is None else float(v) for v in values],
        "mean": float(np.mean(kept)) if kept else None,
        "sd": float(np.std(kept, ddof=1)) if len(kept) > 1 else None,
    }


def cv_summary(reports: list[dict], *, k: int, seed: int, runs: list[str]) -> dict:
    """The summary of the fold reports (in fold order)."""
    out = {
        "k": k,
        "seed": seed,
        "protocol": f"{k}-fold patient-level cross-validation, folds stratified by class (scikit-learn "
        "StratifiedGroupKFold); fold k is the test set, fold k+1 the validation set, the others train",
        "folds": [_fold_record(i + 1, r, run) for i, (r, run) in enumerate(zip(reports, runs))],
        "evaluations": _evaluations(reports),
        "robustness": _robustness(reports),
        "calibration": _calibration(reports),
    }
    return out


def _fold_record(k: int, report: dict, run: str) -> dict:
    test = report["split"]["test"]
    return {"fold": k, "run": run, "test_images": test["n_images"], "test_patients": test["n_patients"]}


def _evaluations(reports: list[dict]) -> list[dict]:
    rows = []
    for level in ("image", "patient"):
        for e in at_level(reports[0]["evaluations"], level):
            key = (e["model"], e["condition"], e.get("attack_source"), level)
            per_fold = [_find(r["evaluations"], key) for r in reports]
            metrics = {m: spread([None if f is None else f.get(m) for f in per_fold]) for m in (*METRICS, "n")}
            rows.append({**{k: e.get(k) for k in ("model", "condition", "attack_source", "eps", "level")}, **metrics})
    return rows


def _find(evaluations: list[dict], key: tuple) -> dict | None:
    return next(
        (e for e in evaluations if (e["model"], e["condition"], e.get("attack_source"), e["level"]) == key), None
    )


def _robustness(reports: list[dict]) -> list[dict]:
    """White-box rows (every model on its own gradients) and worst-case rows per attack and eps, and the clean
    rows."""

    def rows_of(report):
        return {
            (r["model"], r["attack"], r["eps"]): r
            for r in (report.get("robustness") or {}).get("rows", [])
            if r["kind"] in ("clean", "white-box", "worst-case")
        }

    per_fold = [rows_of(r) for r in reports]
    keys = sorted(per_fold[0], key=lambda k: (k[0], k[1] != "none", k[1], k[2] or 0)) if per_fold else []
    return [
        {
            "model": m,
            "attack": a,
            "eps": e,
            **{key: spread([f.get((m, a, e), {}).get(key) for f in per_fold]) for key in ROBUST_KEYS},
        }  # fmt: skip
        for m, a, e in keys
    ]


def _calibration(reports: list[dict]) -> dict:
    out = {}
    for model in reports[0].get("calibration") or {}:
        entries = [(r.get("calibration") or {}).get(model) or {} for r in reports]
        test = [e.get("test") or {} for e in entries]
        out[model] = {
            "temperature": spread([e.get("temperature") for e in entries]),
            "ece_test_raw": spread([(t.get("raw") or {}).get("ece") for t in test]),
            "ece_test_calibrated": spread([(t.get("calibrated") or {}).get("ece") for t in test]),
        }
    return out


# --- text ---------------------------------------------------------------------------------------------------
def mean_sd(s: dict | None) -> str:
    """'0.842 ± 0.031'; '—' where no fold defines it."""
    if not s or s.get("mean") is None:
        return "—"
    return fmt(s["mean"]) + ("" if s.get("sd") is None else f" ± {s['sd']:.3f}")


def per_fold(s: dict) -> str:
    return ", ".join("—" if v is None else f"{v:.2f}" for v in s["values"])


EVAL_HEADER = ("condition", "accuracy", "balanced accuracy", "sensitivity", "specificity", "AUC", "per-fold accuracy")


def evaluation_rows(summary: dict, level: str = "image") -> list[list[str]]:
    return [
        [
            condition_label(e),
            *(mean_sd(e[m]) for m in ("accuracy", "balanced_accuracy", "sensitivity", "specificity", "roc_auc")),
            per_fold(e["accuracy"]),
        ]
        for e in summary["evaluations"]
        if e["level"] == level
    ]


ROBUST_HEADER = ("model", "attack", "eps", "accuracy", "missed-cancer rate", "per-fold accuracy")


def robustness_rows(summary: dict) -> list[list[str]]:
    return [
        [
            r["model"],
            "clean" if r["attack"] == "none" else attack_label(r["attack"]),
            "—" if not r["eps"] else format_eps(r["eps"]),
            mean_sd(r["accuracy"]),
            mean_sd(r["missed_cancer_rate"]),
            per_fold(r["accuracy"]),
        ]  # fmt: skip
        for r in summary["robustness"]
    ]


def markdown(summary: dict) -> str:
    folds = summary["folds"]
    sizes = ", ".join(f"{f['test_patients']} patients / {f['test_images']} images" for f in folds)

    def table(header, rows):
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])

    parts = [
        f"# HistoGuard cross-validation ({summary['k']} folds)\n",
        f"{summary['protocol']}; seed {summary['seed']}. Test sets: {sizes}. Values are mean ± sd over the folds "
        "(sample sd), then each fold's value; each fold's own report.md has its patient-level intervals.\n",
        "## Image level\n",
        table(EVAL_HEADER, evaluation_rows(summary, "image")),
        "\n## Patient level\n",
        table(EVAL_HEADER, evaluation_rows(summary, "patient")),
    ]
    if summary["robustness"]:
        parts += [
            "\n## White-box robustness (each model on its own gradients)\n",
            table(ROBUST_HEADER, robustness_rows(summary)),
        ]
    if summary["calibration"]:
        rows = [[m, mean_sd(c["temperature"]), mean_sd(c["ece_test_raw"]), mean_sd(c["ece_test_calibrated"])]
                for m, c in summary["calibration"].items()]  # fmt: skip
        parts += ["\n## Calibration\n", table(("model", "temperature", "ECE test raw", "ECE test calibrated"), rows)]
    parts.append("\n## Folds\n")
    parts += [f"- fold {f['fold']}: `{f['run']}`" for f in folds]
    return "\n".join(parts) + "\n"
