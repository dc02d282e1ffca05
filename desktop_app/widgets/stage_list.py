"""The stages of a study run and their status, in the order ``engine.workflows.experiment._run`` runs them: prepare,
train A, FGSM from A, train B, train C (adversarial training), evaluate, robustness (white-box, transfer,
noise, natural perturbations and minimal eps), export ONNX, black-box Square attack on the ONNX files.

Stages only move forward: the engine reports them in order, so when one starts every earlier one is done
(a resumed run skips what was finished). A stage the configuration does not run (no Model C, no black-box
attack) is marked skipped. Status is written as a word with a symbol, never colour alone.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem, QWidget

from engine.core.config import ExperimentConfig
from engine.core.progress import Progress

STAGES = (
    ("prepare", "Prepare data"),
    ("train_a", "Train Model A"),
    ("fgsm", "FGSM images from A"),
    ("train_b", "Train Model B"),
    ("train_c", "Train Model C"),
    ("evaluate", "Evaluate"),
    ("robustness", "Robustness evaluation"),
    ("export", "Export ONNX"),
    ("blackbox", "Black-box (ONNX)"),
)
KEYS = tuple(key for key, _ in STAGES)
SYMBOLS = {"waiting": "○", "running": "▶", "done": "✓", "cancelled": "■", "failed": "✗", "skipped": "–"}
PREFIXES = (  # engine stage name (lower case) -> row; first match wins
    ("train model a", "train_a"),
    ("train model b", "train_b"),
    ("train model c", "train_c"),
    ("fgsm", "fgsm"),
    ("evaluate", "evaluate"),
    ("robustness:", "robustness"),
    ("minimal eps", "robustness"),
    ("export", "export"),
    ("square attack", "blackbox"),
    ("black-box", "blackbox"),
)


def stage_key(stage: str) -> str | None:
    """Map an engine progress stage ("train Model A", "robustness: pgd on B at 8/255", ...) to a row key;
    None for the final "done"."""
    s = stage.lower()
    if s == "done":
        return None
    return next((key for prefix, key in PREFIXES if s.startswith(prefix)), "prepare")  # discovery, decode


def skipped_stages(cfg: ExperimentConfig | None) -> dict[str, str]:
    """The stages ``cfg`` does not run, with the reason shown in the Detail column."""
    if cfg is None:
        return {}
    skipped = {}
    if cfg.defence == "none":
        skipped["train_c"] = "Model C defence is 'none'"
    if not cfg.export_onnx:
        skipped["export"] = "ONNX export is off"
    if not cfg.export_onnx or not cfg.blackbox_images:
        skipped["blackbox"] = "black-box attack is off (0 images)"
    return skipped


def _detail(p: Progress) -> str:
    if p.unit == "epochs":
        return f"epoch {p.done} of {p.total} done"
    if p.unit == "batches" and "epoch" in p.metrics:
        return f"epoch {int(p.metrics['epoch'])}: batch {p.done} of {p.total}"
    return f"{p.stage.removeprefix('robustness: ')}: {p.done} of {p.total} {p.unit}"


class StageList(QTableWidget):
    """One row per stage: name, status (waiting / running / done / cancelled / failed / skipped), detail."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(len(STAGES), 3, parent)
        self.setHorizontalHeaderLabels(["Stage", "Status", "Detail"])
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        header = self.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.statuses: dict[str, str] = {}
        self.blackbox_models: tuple[str, ...] = ()
        self._models_attacked = 0
        for row, (_key, name) in enumerate(STAGES):
            self.setItem(row, 0, QTableWidgetItem(name))
            self.setItem(row, 1, QTableWidgetItem())
            self.setItem(row, 2, QTableWidgetItem())
        self.reset()
        self.verticalHeader().setDefaultSectionSize(self.fontMetrics().height() + 6)
        self.resizeRowsToContents()
        height = self.horizontalHeader().height() + sum(self.rowHeight(r) for r in range(len(STAGES))) + 4
        self.setFixedHeight(height)

    def reset(self, cfg: ExperimentConfig | None = None) -> None:
        """Every stage waiting, except those ``cfg`` does not run (skipped, with the reason)."""
        skipped = skipped_stages(cfg)
        for key in KEYS:
            self.set_status(key, "skipped" if key in skipped else "waiting", skipped.get(key, ""))
        self.blackbox_models = ("A", "B") + (("C",) if cfg is not None and cfg.defence != "none" else ())
        self._models_attacked = 0

    def set_status(self, key: str, status: str, detail: str | None = None) -> None:
        row = KEYS.index(key)
        self.statuses[key] = status
        self.item(row, 1).setText(f"{SYMBOLS[status]} {status}")
        if detail is not None:
            self.item(row, 2).setText(detail)
            self.item(row, 2).setToolTip(detail)

    def status(self, key: str) -> str:
        return self.statuses[key]

    def detail(self, key: str) -> str:
        return self.item(KEYS.index(key), 2).text()

    def current(self) -> str | None:
        """The running stage, if any."""
        return next((k for k in KEYS if self.statuses[k] == "running"), None)

    def on_progress(self, p: Progress) -> None:
        key = stage_key(p.stage)
        if key is None:
            self.set_all("done")
            return
        index = KEYS.index(key)
        if any(self.statuses[k] not in ("waiting", "skipped") for k in KEYS[index + 1 :]):
            return  # a late event of an earlier stage
        for k in KEYS[:index]:
            if self.statuses[k] not in ("done", "skipped"):
                self.set_status(k, "done")
        if key == "blackbox" and p.stage == "black-box stress":
            self._models_attacked += 1  # the engine's end-of-model event
            return
        self.set_status(key, "running", self._blackbox_detail(p) if key == "blackbox" else _detail(p))

    def _blackbox_detail(self, p: Progress) -> str:
        i = self._models_attacked
        model = self.blackbox_models[i] if i < len(self.blackbox_models) else f"{i + 1}"
        return f"Model {model}: {p.stage}, {p.done} of {p.total} {p.unit}"

    def set_all(self, status: str) -> None:
        """Every stage that runs gets ``status``; skipped ones stay skipped."""
        for key in KEYS:
            if self.statuses[key] != "skipped":
                self.set_status(key, status)

    def stop(self, status: str) -> None:
        """Mark the running stage ``cancelled`` or ``failed`` (the first waiting one if none runs yet)."""
        key = self.current() or next((k for k in KEYS if self.statuses[k] == "waiting"), None)
        if key is not None:
            self.set_status(key, status)

    def show_report(self, report: dict) -> None:
        """A finished run: what each stage produced, and which stages an older or smaller run lacks."""
        self.reset()
        self.set_all("done")
        training = report.get("training", {})
        for model in ("A", "B", "C"):
            if training.get(model):
                self.set_status(f"train_{model.lower()}", "done", training_detail(training[model]))
        if not training.get("C"):
            self.set_status("train_c", "skipped", "no Model C in this run")
        robustness = report.get("robustness") or {}
        if robustness.get("rows"):
            self.set_status("robustness", "done", robustness_detail(robustness))
        else:
            self.set_status("robustness", "skipped", "not in this run (made before the robustness evaluation)")
        if not report.get("onnx"):
            self.set_status("export", "skipped", "no ONNX files in this run")
        square = [r for r in robustness.get("rows", []) if r.get("kind") == "black-box"]
        if square:
            models = ", ".join(r["model"] for r in square)
            eps = round(square[0]["eps"] * 255)
            self.set_status("blackbox", "done", f"Square at {eps}/255 on Model {models}, {square[0]['steps']} queries")
        else:
            self.set_status("blackbox", "skipped", "no black-box attack in this run")


def training_detail(t: dict) -> str:
    """A training summary of report.json in one line: epochs, the chosen epoch and its score."""
    if "best_epoch" not in t:
        return ""
    robust = t.get("selected_by") == "val_pgd_balanced_accuracy"
    text = f"{t['epochs_run']} epochs{' (early stop)' if t.get('stopped_early') else ''}, best {t['best_epoch']}: "
    text += f"{'PGD ' if robust else ''}val. bal. acc. {t['best_val_balanced_accuracy']:.3f}"
    overfit = t.get("catastrophic_overfitting_epochs") or []
    if overfit:
        text += f"; ⚠ catastrophic overfitting in epoch {', '.join(str(e) for e in overfit)}"
    return text


def robustness_detail(section: dict) -> str:
    rows = [r for r in section["rows"] if r.get("kind") != "black-box"]
    text = f"{len(rows)} results"
    if section.get("min_eps"):
        text += f"; minimal eps of Model {', '.join(section['min_eps'])}"
    if section.get("flags"):
        text += f"; ⚠ {len(section['flags'])} gradient-masking flag(s)"
    return text
