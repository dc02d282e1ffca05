"""Start page: open a dataset, open a run, or try the synthetic demo."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from desktop_app.pages.base import Page, heading

STEPS = (
    ("1. Data", "Open a folder of H&E images (BreakHis names, class folders or a CSV). Images are split by patient."),
    ("2. Train", "Train Model A (clean) and Model B (original + FGSM images), on the GPU when there is one."),
    ("3. Stress test", "Attack a model with FGSM or PGD at a chosen eps and see which predictions flip."),
    ("4. Results", "Confusion matrices, sensitivity / specificity beside the majority baseline, the report."),
    ("5. Diagnose", "Run an exported ONNX model on your own slide images, offline, with a CSV record."),
)

SYNTHETIC_NOTICE = (
    "<b>The demo dataset is synthetic.</b> Its images are generated to look like H&amp;E patches of two classes; "
    "they are not patient data, and accuracy on them says nothing about diagnostic performance."
)


class StartPage(Page):
    title = "Start"
    navigate = Signal(str)

    def __init__(self, ctx, controller, parent: QWidget | None = None) -> None:
        super().__init__(ctx, parent)
        self.controller = controller
        layout = QVBoxLayout(self)
        layout.setContentsMargins(32, 24, 32, 24)
        layout.addWidget(
            heading(
                "HistoGuard",
                "Train breast-cancer histopathology classifiers, stress-test them with adversarial attacks, "
                "harden them, and run them offline.",
            )
        )
        layout.addLayout(self._buttons())
        self.notice = QLabel(SYNTHETIC_NOTICE)
        self.notice.setObjectName("syntheticNotice")
        self.notice.setWordWrap(True)
        self.notice.setStyleSheet("background:#fff4ce; border:1px solid #e0c060; padding:8px; color:#4a3b00;")
        layout.addWidget(self.notice)
        layout.addWidget(self._steps())
        layout.addStretch(1)

    def _buttons(self) -> QGridLayout:
        grid = QGridLayout()
        self.open_data_button = self._button("Open dataset folder…", "Your images, in class folders or BreakHis layout")
        self.open_run_button = self._button("Open run folder…", "A finished or interrupted training run")
        self.demo_button = self._button(
            "Try the demo (synthetic data)", "Generates 480 synthetic images, then opens them"
        )
        self.open_onnx_button = self._button("Open ONNX model…", "Diagnose your own slide images offline")
        for i, b in enumerate((self.open_data_button, self.open_run_button, self.demo_button, self.open_onnx_button)):
            grid.addWidget(b, i // 2, i % 2)
        self.open_data_button.clicked.connect(self._open_data)
        self.open_run_button.clicked.connect(self._open_run)
        self.demo_button.clicked.connect(self.try_demo)
        self.open_onnx_button.clicked.connect(self._open_onnx)
        return grid

    @staticmethod
    def _button(text: str, tip: str) -> QPushButton:
        b = QPushButton(f"{text}\n{tip}")
        b.setMinimumHeight(64)
        b.setStyleSheet("text-align:left; padding:8px 14px; font-size:13px;")
        b.setToolTip(tip)
        return b

    def _steps(self) -> QFrame:
        frame = QFrame()
        grid = QGridLayout(frame)
        grid.setContentsMargins(0, 12, 0, 0)
        for row, (name, text) in enumerate(STEPS):
            grid.addWidget(QLabel(f"<b>{name}</b>"), row, 0, Qt.AlignmentFlag.AlignTop)
            label = QLabel(text)
            label.setWordWrap(True)
            grid.addWidget(label, row, 1)
        grid.setColumnStretch(1, 1)
        return frame

    def try_demo(self) -> None:
        self.demo_button.setEnabled(False)
        task = self.controller.try_demo()
        task.ended.connect(self._demo_ended)

    def _demo_ended(self) -> None:
        self.demo_button.setEnabled(True)

    def _open_data(self) -> None:
        self.window().open_dataset_dialog()

    def _open_run(self) -> None:
        self.window().open_run_dialog()

    def _open_onnx(self) -> None:
        self.window().open_onnx_dialog()
