"""The Stress-test page's settings: models, images, attack and eps (k/255), and the Run button.

Only widgets and the values they hold: the page opens file dialogs and starts the work.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
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

SOURCES = (("One image", "image"), ("A folder of labelled images", "folder"), ("The run's test split", "split"))
ATTACKS = (("FGSM (one step)", "fgsm"), ("PGD (iterative)", "pgd"))
SET_EPS_K = (0, 1, 2, 4, 8, 16, 32)
PATH_ROLE = Qt.ItemDataRole.UserRole
NAME_ROLE = Qt.ItemDataRole.UserRole + 1


def set_eps_values(k: int) -> list[int]:
    """The eps values (in k/255) a set is tested at: 0, 1, 2, 4, ... up to and including ``k``."""
    return sorted({e for e in SET_EPS_K if e <= k} | {k})


class StressForm(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._models_box())
        layout.addWidget(self._images_box())
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
        self.models.setMaximumHeight(96)
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

    def _images_box(self) -> QGroupBox:
        box = QGroupBox("Images")
        v = QVBoxLayout(box)
        row = QHBoxLayout()
        self.source_combo = QComboBox()
        for text, key in SOURCES:
            self.source_combo.addItem(text, key)
        self.choose_button = QPushButton("Choose…")
        row.addWidget(self.source_combo, 1)
        row.addWidget(self.choose_button)
        self.source_label = QLabel("")
        self.source_label.setWordWrap(True)
        self.source_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        v.addLayout(row)
        v.addWidget(self.source_label)
        self.paths: dict[str, Path | None] = {"image": None, "folder": None, "split": None}
        self.source_combo.currentIndexChanged.connect(self._update_source)
        return box

    def _attack_box(self) -> QGroupBox:
        box = QGroupBox("Attack (white-box)")
        form = QFormLayout(box)
        self.attack_combo = QComboBox()
        for text, key in ATTACKS:
            self.attack_combo.addItem(text, key)
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(1, 200)
        self.steps_spin.setValue(10)
        self.steps_spin.setSuffix(" steps")
        self.eps_slider = QSlider(Qt.Orientation.Horizontal)
        self.eps_slider.setRange(0, 32)
        self.eps_slider.setPageStep(4)
        self.eps_slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.eps_slider.setTickInterval(4)
        self.eps_label = QLabel()
        self.eps_label.setObjectName("epsLabel")
        self.set_eps_note = QLabel()
        self.set_eps_note.setWordWrap(True)
        self.set_eps_note.setStyleSheet("color: palette(mid); font-size: 11px;")
        form.addRow("Method", self.attack_combo)
        form.addRow("PGD", self.steps_spin)
        form.addRow(self.eps_label, self.eps_slider)
        form.addRow(self.set_eps_note)
        self.attack_combo.currentIndexChanged.connect(self._update_attack)
        self.eps_slider.valueChanged.connect(self._update_eps)
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
        key = self.source_combo.currentData()
        return key, self.paths[key]

    def set_source(self, key: str, path: str | Path | None = None) -> None:
        if key != "split" or path is not None:
            self.paths[key] = Path(path) if path is not None else None
        self.source_combo.setCurrentIndex(self.source_combo.findData(key))
        self._update_source()

    def method(self) -> str:
        return self.attack_combo.currentData()

    def set_method(self, method: str) -> None:
        self.attack_combo.setCurrentIndex(self.attack_combo.findData(method))

    def eps_k(self) -> int:
        return self.eps_slider.value()

    def set_eps_k(self, k: int) -> None:
        self.eps_slider.setValue(k)
        self._update_eps()

    # --- labels -----------------------------------------------------------------------------------
    def _update_source(self) -> None:
        key, path = self.source()
        self.choose_button.setEnabled(key != "split")
        if key == "split":
            text = f"Test split of {path}" if path else "Open a run folder first (File ▸ Open run folder…)"
        elif path is None:
            text = "Nothing chosen yet: click Choose…"
        else:
            text = str(path)
        self.source_label.setText(text)

    def _update_attack(self) -> None:
        self.steps_spin.setEnabled(self.method() == "pgd")

    def _update_eps(self) -> None:
        k = self.eps_k()
        self.eps_label.setText(f"eps = {k}/255")
        ks = ", ".join(map(str, set_eps_values(k)))
        self.set_eps_note.setText(f"A set is tested at eps {ks} (/255); flipped images are listed at {k}/255.")
