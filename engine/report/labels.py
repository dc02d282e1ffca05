"""Names and number formats of a report's conditions, shared by the HTML/CSV export and the desktop app.

Imports nothing heavy (no torch): the app's Results page uses it while the window opens.
"""

from __future__ import annotations

from pathlib import Path

from engine.core.eps import format_eps
from engine.core.intervals import INTERVAL_METRICS
from engine.core.metadata import ModelMeta

METRICS = INTERVAL_METRICS  # the table columns: every metric with an interval
METRIC_TITLES = {
    "accuracy": "accuracy",
    "balanced_accuracy": "balanced accuracy",
    "sensitivity": "sensitivity",
    "specificity": "specificity",
    "precision": "precision",
    "f1": "F1",
    "roc_auc": "ROC AUC",
    "missed_cancer_rate": "missed-cancer rate",
    "majority_baseline": "majority baseline",
    "n": "n",
}
# the study's five conditions in reading order: (model, attack source or None)
CONDITION_ORDER = (("A", None), ("A", "A"), ("B", None), ("B", "A"), ("B", "B"))
CELL_NAMES = (("TN", "FP"), ("FN", "TP"))  # confusion_matrix[true][predicted], the positive class second


def eps_text(eps: float) -> str:
    """0.0313725 -> '8/255'; values that are not k/255 as decimals."""
    return format_eps(eps)


def fmt(value) -> str:
    """A metric as the tables print it: 3 decimals, '—' where it is undefined (None)."""
    return "—" if value is None else f"{value:.3f}"


def fmt_ci(value, ci=None) -> str:
    """A metric with its 95% interval, '0.84 (0.79–0.88)'; without an interval as ``fmt`` prints it."""
    if value is None or not ci:
        return fmt(value)
    return f"{value:.2f} ({ci[0]:.2f}–{ci[1]:.2f})"


NO_INTERVAL = "(—)"


def cell(row: dict, key: str) -> str:
    """``row[key]`` with the interval the row stores for it (``row["ci"][key]``), as ``fmt_ci`` prints it;
    '1.00 (—)' where the row has intervals but this one rests on too few patients to have one."""
    ci = row.get("ci") or {}
    if key in ci and ci[key] is None and row.get(key) is not None:
        return f"{row[key]:.2f} {NO_INTERVAL}"
    return fmt_ci(row.get(key), ci.get(key))


def intervals_text(intervals: dict | None) -> str:
    """What the brackets mean, for the report: 'In brackets: 95% confidence intervals from a patient-level ...'."""
    if not intervals:
        return ""
    unit, n = intervals.get("unit", "patient"), intervals.get("n_units")
    of = f" of the {n} test {'patients' if unit == 'patient' else 'images'}" if n is not None else ""
    text = (
        f"In brackets: {intervals['confidence']:.0%} confidence intervals from a {unit}-level bootstrap "
        f"({intervals['n_resamples']} resamples{of}, seed {intervals['seed']}; percentile intervals, exact "
        "Clopper-Pearson bounds for perfect scores); (—): no interval, the metric rests on one patient. Images of "
        "one patient are resampled together: they are not independent evidence."
    )
    if unit == "patient" and n is not None and n < 10:
        text += f" With only {n} test patients the intervals are rough: they cover less often than they claim."
    return text


def training_text(meta: ModelMeta) -> str:
    """'clean (original images only)' or 'adversarial: originals + FGSM images from Model A, eps 8/255'."""
    how = meta.training
    if not isinstance(how, dict) or not how.get("method"):
        return "unknown (the file has no training record)"
    method = how["method"]
    if method == "clean":
        return "clean (original images only)"
    if method == "gaussian":
        return f"Gaussian noise, sigma {how.get('sigma', '?')} (randomized smoothing: certify with this sigma)"
    eps = f", eps {eps_text(how['eps'])}" if how.get("eps") is not None else ""
    if method == "merged-fgsm":
        source = str(how.get("attack_source", "?"))
        source = f"Model {source}" if len(source) <= 2 else Path(source).name
        return f"adversarial: originals + FGSM images from {source}{eps}"
    if method == "adversarial-training":
        return f"adversarial training ({how.get('defence', '?')}){eps}"
    return f"adversarial ({method}){eps}"


def calibration_text(meta: ModelMeta) -> str:
    """'calibrated (temperature 1.84, fitted on 280 validation images)', or why the probabilities are not."""
    cal = meta.calibration
    if not cal:
        return "not calibrated (the model's own softmax; it has no calibration record)"
    if not cal.get("fitted", True):
        return "not calibrated: the validation images were all called right, so no temperature could be fitted"
    return f"calibrated (temperature {meta.temperature:.2f}, fitted on {cal.get('n_images', '?')} validation images)"


def band_text(band, positive: str) -> str:
    """'p(malignant) 0.20–0.80: flagged uncertain'."""
    return f"p({positive}) {band[0]:.2f}–{band[1]:.2f}: flagged uncertain, for review"


def attack_kind(e: dict) -> str:
    """'clean', 'white-box' (the attack was made on the evaluated model) or 'transfer' (made on another)."""
    if e["condition"] == "clean" or not e.get("attack_source"):
        return "clean"
    return "white-box" if e["attack_source"] == e["model"] else "transfer"


def condition_label(e: dict) -> str:
    """'Model B, FGSM 8/255 from A (transfer)'."""
    kind = attack_kind(e)
    if kind == "clean":
        return f"Model {e['model']}, clean"
    return f"Model {e['model']}, FGSM {eps_text(e['eps'])} from {e['attack_source']} ({kind})"


def condition_key(e: dict) -> int:
    """Sort key putting evaluations in the study's order (unknown conditions last)."""
    source = e.get("attack_source") if e["condition"] != "clean" else None
    pair = (e["model"], source)
    return CONDITION_ORDER.index(pair) if pair in CONDITION_ORDER else len(CONDITION_ORDER)


def at_level(evaluations: list[dict], level: str) -> list[dict]:
    """The evaluations at ``level`` ('image' or 'patient') in the study's order."""
    return sorted((e for e in evaluations if e["level"] == level), key=condition_key)


def majority_text(e: dict, classes: list[str]) -> str:
    """What the majority baseline means for ``e``'s test set, e.g. "a model that always says 'malignant'"."""
    (tn, fp), (fn, tp) = e["confusion_matrix"]
    negatives, positives = tn + fp, fn + tp
    if negatives == positives:
        return f"a model that always says '{classes[0]}' or always '{classes[1]}' (the classes are balanced)"
    return f"a model that always says '{classes[1] if positives > negatives else classes[0]}'"


def sweep_series(
    sweep: list[dict], metric: str = "accuracy"
) -> dict[tuple[str, str], list[tuple[float, float | None]]]:
    """{(model, attack source): [(eps, metric), ...] sorted by eps}, in the order A from A, B from A, B from B."""
    series: dict[tuple[str, str], list[tuple[float, float | None]]] = {}
    for row in sweep:
        series.setdefault((row["model"], row["attack_source"]), []).append((row["eps"], row.get(metric)))
    order = {pair: i for i, pair in enumerate(CONDITION_ORDER)}
    return {k: sorted(v) for k, v in sorted(series.items(), key=lambda kv: order.get(kv[0], len(order)))}


def series_label(model: str, source: str) -> str:
    kind = "white-box" if model == source else "transfer"
    return f"Model {model}, FGSM from {source} ({kind})"


# --- the report's figures (drawn by engine.evaluate.figures into the run folder, embedded by report.html) ------
SWEEP_FIGURE, ROBUST_FIGURE, MIN_EPS_FIGURE = "sweep_accuracy.png", "robustness_accuracy.png", "min_eps.png"
RELIABILITY_FIGURE, COVERAGE_FIGURE = "reliability.png", "coverage_accuracy.png"


def cm_figure_name(e: dict) -> str:
    """The file name of an image-level confusion-matrix figure: 'cm_B_fgsm_from_A.png'."""
    source = f"_from_{e['attack_source']}" if e.get("attack_source") else ""
    return f"cm_{e['model']}_{e['condition']}{source}.png"


def figure_names(result: dict) -> list[str]:
    """Every figure a report has, in the order the report shows them."""
    names = [cm_figure_name(e) for e in at_level(result["evaluations"], "image")]
    robust = result.get("robustness") or {}
    return (
        names
        + ([SWEEP_FIGURE] if result.get("sweep") else [])
        + ([ROBUST_FIGURE] if robust.get("rows") else [])
        + ([MIN_EPS_FIGURE] if robust.get("min_eps") else [])
        + ([RELIABILITY_FIGURE, COVERAGE_FIGURE] if result.get("calibration") else [])
    )


def levers_text(how: dict) -> str:
    """'; EMA 0.999, HED jitter 0.05/0.05, AWP 0.005' for the training levers a 'how trained' record holds."""
    parts = []
    if "ema" in how:
        parts.append(f"EMA {how['ema']['decay']:g}")
    if "hed_jitter" in how:
        parts.append(f"HED jitter {how['hed_jitter']['scale']:g}/{how['hed_jitter']['shift']:g}")
    if "awp" in how:
        parts.append(f"AWP {how['awp']['gamma']:g}")
    return "; " + ", ".join(parts) if parts else ""
