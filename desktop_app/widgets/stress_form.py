"""The Stress-test page's white-box settings: models, images, attack, eps (k/255, or an L2 radius for PGD-L2),
steps, restarts, the targeted (missed-cancer) direction, and the Run button.

Only widgets and the values they hold: the page opens file dialogs and starts the work. Attack names and
labels come from ``engine.core.catalog`` (torch-free), so the picker lists what the engine's registry runs.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from desktop_app.widgets.image_source import images_group
from engine.core.catalog import ATTACK_LABELS, BASELINES, ITERATIVE, LOSS_LABELS, WHITE_BOX
from engine.core.config import AttackConfig

SOURCES = (("One image", "image"), ("A folder of labelled images", "folder"), ("The run's test split", "split"))
HINTS = {
    "fgsm": "one step",
    "bim": "iterative",
    "pgd": "iterative, random start",
    "pgd-l2": "L2, random start",
    "apgd": "adaptive step size",
    "uniform-noise": "baseline",
    "sign-noise": "baseline",
}
ATTACKS = tuple((f"{ATTACK_LABELS[n]} ({HINTS.get(n, '')})", n) for n in (*WHITE_BOX, *BASELINES))
RESTARTS = ("pgd", "pgd-l2", "apgd")  # random starts; BIM and FGSM start at the image, a restart would repeat them
L2 = "pgd-l2"  # its eps is an L2 radius in pixel units, not k/255
L2_FRACTIONS = (0.125, 0.25, 0.5, 1.0)  # a set under PGD-L2 is tested at these fractions of the radius
SET_EPS_K = (0, 1, 2, 4, 8, 16, 32)
PATH_ROLE = Qt.ItemDataRole.UserRole
NAME_ROLE = Qt.ItemDataRole.UserRole + 1
NOTE_STYLE = "color: palette(mid); font-size: 11px;"


def set_eps_values(k: int) -> list[int]:
    """The eps values (in k/255) a set is tested at: 0, 1, 2, 4, ... up to and including ``k``."""
    return sorted({e for e in SET_EPS_K if e <= k} | {k})


def note(text: str = "") -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setStyleSheet(NOTE_STYLE)
    return label


def spin(low: int, high: int, value: int, suffix: str) -> QSpinBox:
    box = QSpinBox()
    box.setRange(low, high)
    box.setValue(value)
    box.setSuffix(suffix)
    return box


class StressForm(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._models_box())
        layout.addWidget(images_group(self, SOURCES))
        layout.addWidget(self._attack_box())
        self.run_button = QPushButton("Run stress test")
        self.run_button.setMinimumHeight(34)
        layout.addWidget(self.run_button)
        layout.addStretch(1)
        self.set_eps_k(4)

    # --- building ---------------------------------------------------------------------------------
    def _models_box(self) -> QGroupBox:
        box = QGroupBox("Models")
        v = QVBoxLayout(box)
        self.models = QListWidget()
        self.models.setMaximumHeight(74)
        hint = QLabel("Tick the models to compare on a set; one image is attacked on the highlighted model.")
        hint.setWordWrap(True)
        hint.setStyleSheet("color: palette(mid); font-size: 11px;")
        row = QHBoxLayout()
        self.open_checkpoint_button = QPushButton("Open checkpoint…")
        self.open_onnx_button = QPushButton("Open ONNX…")
        self.open_onnx_button.setToolTip("Attacks need gradients: the torch checkpoint it was exported from is used")
        row.addWidget(self.open_checkpoint_button)
        row.addWidget(self.open_onnx_button)
        v.addWidget(self.models)
        v.addWidget(hint)
        v.addLayout(row)
        return box

    def _attack_box(self) -> QGroupBox:
        box = QGroupBox("Attack (white-box)")
        form = QFormLayout(box)
        form.setVerticalSpacing(4)
        self.attack_combo = QComboBox()
        for text, key in ATTACKS:
            self.attack_combo.addItem(text, key)
            if key in BASELINES:  # a control, so that an attack's harm is not mistaken for noise's
                tip = "Random noise of the same size, not an attack: an attack must do more harm than this"
                self.attack_combo.setItemData(self.attack_combo.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.steps_spin = spin(1, 200, 10, " steps")
        self.restarts_spin = spin(1, 20, 1, "")
        self.restarts_spin.setToolTip("The attack starts again from new random points; the worst result counts")
        self.loss_combo = QComboBox()
        for key, text in LOSS_LABELS.items():
            self.loss_combo.addItem(text, key)
        self.loss_combo.setToolTip(
            "What the attack climbs. The margin (default) keeps working on a confident model; cross-entropy "
            "saturates there, its gradient vanishes and the model can look robust when it is not."
        )
        self.eps_slider = QSlider(Qt.Orientation.Horizontal)
        self.eps_slider.setRange(0, 32)
        self.eps_slider.setPageStep(4)
        self.eps_slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.eps_slider.setTickInterval(4)
        self.eps_label = QLabel()
        self.eps_label.setObjectName("epsLabel")
        self.l2_spin = QDoubleSpinBox()
        self.l2_spin.setRange(0.0, 1.0)  # the stress tests refuse eps above 1
        self.l2_spin.setSingleStep(0.05)
        self.l2_spin.setDecimals(2)
        self.l2_spin.setValue(0.5)
        self.l2_spin.setToolTip("Euclidean length of the whole perturbation, in pixel units (images in [0, 1])")
        self.targeted = QCheckBox()
        self.targeted_note = note()
        self.set_eps_note = note()
        for label, widget in (("Method", self.attack_combo), ("Iterations", self.steps_spin),
                              ("Restarts", self.restarts_spin), ("Loss", self.loss_combo),
                              (self.eps_label, self.eps_slider), ("L2 radius", self.l2_spin)):  # fmt: skip
            form.addRow(label, widget)
        for widget in (self.set_eps_note, self.targeted, self.targeted_note):
            form.addRow(widget)
        self.attack_form = form
        self.attack_combo.currentIndexChanged.connect(self._update_attack)
        self.eps_slider.valueChanged.connect(self._update_eps)
        self.l2_spin.valueChanged.connect(self._update_eps)
        self.set_classes(None)
        self._update_attack()
        return box

    # --- values -----------------------------------------------------------------------------------
    def set_models(self, models: list[tuple[str, str, Path]]) -> None:
        """Replace the list by (name, label, checkpoint) entries, all ticked; the first is highlighted."""
        self.models.clear()
        for name, label, path in models:
            self.add_model(name, label, path)
        if self.models.count():
            self.models.setCurrentRow(0)

    def add_model(self, name: str, label: str, path: Path, checked: bool = True) -> QListWidgetItem:
        taken = self.model_names()
        unique, n = name, 2
        while unique in taken:
            unique, n = f"{name} ({n})", n + 1
        item = QListWidgetItem(label if unique == name else f"{label} [{unique}]")
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
        item.setData(PATH_ROLE, str(path))
        item.setData(NAME_ROLE, unique)
        item.setToolTip(str(path))
        self.models.addItem(item)
        return item

    def model_names(self) -> list[str]:
        return [self.models.item(i).data(NAME_ROLE) for i in range(self.models.count())]

    def checked_models(self) -> dict[str, str]:
        items = [self.models.item(i) for i in range(self.models.count())]
        return {i.data(NAME_ROLE): i.data(PATH_ROLE) for i in items if i.checkState() == Qt.CheckState.Checked}

    def current_model(self) -> tuple[str, str] | None:
        """The highlighted model, else the first ticked one."""
        item = self.models.currentItem()
        if item is not None:
            return item.data(NAME_ROLE), item.data(PATH_ROLE)
        checked = self.checked_models()
        return next(iter(checked.items())) if checked else None

    def source(self) -> tuple[str, Path | None]:
        return self.image_source.source()

    def set_source(self, key: str, path: str | Path | None = None) -> None:
        self.image_source.set_source(key, path)

    def method(self) -> str:
        return self.attack_combo.currentData()

    def set_method(self, method: str) -> None:
        self.attack_combo.setCurrentIndex(self.attack_combo.findData(method))

    def eps_k(self) -> int:
        return self.eps_slider.value()

    def set_eps_k(self, k: int) -> None:
        self.eps_slider.setValue(k)
        self._update_eps()

    def is_l2(self) -> bool:
        return self.method() == L2

    def eps(self) -> float:
        """The eps of one image (pixel units): k/255, or the L2 radius for PGD-L2."""
        return self.l2_spin.value() if self.is_l2() else self.eps_k() / 255

    def eps_values(self) -> list[float]:
        """The eps values a set is tested at (0 = clean is added by the engine)."""
        if self.is_l2():
            return [round(f * self.l2_spin.value(), 6) for f in L2_FRACTIONS]
        return [k / 255 for k in set_eps_values(self.eps_k())]

    def target(self) -> str | None:
        """The class a targeted attack pulls images towards (the negative class), else None."""
        return self.negative_class if self.targeted.isChecked() and self.targeted.isEnabled() else None

    def attack(self) -> AttackConfig:
        """The chosen attack at the eps of one image (a set is swept over ``eps_values``); settings the attack does
        not take are left at their defaults."""
        method = self.method()
        steps = self.steps_spin.value() if method in ITERATIVE else None
        restarts = self.restarts_spin.value() if method in RESTARTS else 1
        loss = self.loss_combo.currentData()
        return AttackConfig(method, self.eps(), steps=steps, restarts=restarts, target=self.target(), loss=loss)

    def set_classes(self, classes: list[str] | None) -> None:
        """Name the classes in the targeted checkbox: 'make <positive> look <negative>'."""
        self.negative_class = classes[0] if classes else None
        positive = classes[1] if classes else "the positive class"
        self.targeted.setText(f"Targeted: make {positive} look {self.negative_class or 'negative'}")
        self.targeted_note.setText(
            f"The missed-cancer direction: every image is pushed towards '{self.negative_class}'; the "
            "sensitivity under attack shows how many cancers a small change could hide."
            if classes
            else "Open a run folder to name the classes of a targeted attack."
        )
        self._update_attack()

    # --- labels -----------------------------------------------------------------------------------

    def _update_attack(self) -> None:
        method = self.method()
        self.steps_spin.setEnabled(method in ITERATIVE)
        self.restarts_spin.setEnabled(method in RESTARTS)
        self.loss_combo.setEnabled(method in WHITE_BOX)  # noise climbs nothing
        self.targeted.setEnabled(method in WHITE_BOX and self.negative_class is not None)  # noise has no target
        self.attack_form.setRowVisible(self.eps_slider, not self.is_l2())
        self.attack_form.setRowVisible(self.l2_spin, self.is_l2())
        self._update_eps()

    def _update_eps(self) -> None:
        k = self.eps_k()
        self.eps_label.setText(f"eps = {k}/255")
        if self.is_l2():
            radii = ", ".join(f"{e:g}" for e in self.eps_values())
            self.set_eps_note.setText(f"The length of the whole change, not a per-pixel bound. A set: {radii}.")
        else:
            ks = ", ".join(map(str, set_eps_values(k)))
            self.set_eps_note.setText(f"A set is tested at eps {ks} (/255); flipped images are listed at {k}/255.")
