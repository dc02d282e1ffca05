"""The Stress page's certificate of one image (``engine.api.certify_files`` on an ONNX file, torch-free), shown
under the attack's triptych with the attack's size beside the certified one.

``certify_image`` runs on a worker and touches no widgets; ``CertifyMode`` is the UI-thread part. The ONNX file
offered first is the one of the highlighted white-box model (the run's model_<x>.onnx), else the app's.
"""

from __future__ import annotations

from dataclasses import replace
from html import escape
from pathlib import Path

from PySide6.QtCore import QObject

from desktop_app.widgets.certify_panel import CertifyPanel
from desktop_app.workers import Task
from engine import api
from engine.core.config import CertifyConfig
from engine.core.errors import ConfigError, DecodeError


def certify_image(onnx: str, image: str, config: CertifyConfig, *, on_progress=None, cancel=None) -> dict:
    """The certificate row of ``image`` (worker), with the model's own sigma where it has one (``config``'s
    otherwise); ``own_sigma`` says which."""
    own = api.model_sigma(api.read_model_info(onnx, device="auto").meta)
    cfg = replace(config, sigma=own) if own is not None else config
    row = api.certify_files(onnx, [image], config=cfg, on_progress=on_progress, cancel=cancel)[0]
    if row["error"]:
        raise DecodeError(row["error"])
    return {**row, "own_sigma": own is not None}


def attack_comparison(row: dict, attack: dict | None) -> str:
    """The attack shown above (same image) against the certificate, in one sentence; '' without one."""
    if not attack or Path(attack["image_path"]) != Path(row["path"]) or row["predicted"] == "abstain":
        return ""
    if attack.get("method") == "pgd-l2":
        size, covered, unit = attack["eps"], row["radius_l2"], f"L2 radius {attack['eps']:g}"
    else:
        size, covered, unit = attack["eps"] * 255, row["linf_equivalent_255"], f"eps {attack['eps'] * 255:.3g}/255"
    if size <= covered:
        return f" The attack above ({unit}) is inside what the certificate covers: it cannot change the smoothed call."
    return f" The attack above ({unit}, on the plain model) is beyond what the certificate covers."


def certificate_html(row: dict, attack: dict | None = None) -> str:
    """A certificate row in words, for the panel."""
    sigma = f"sigma {row['sigma']:g}{' (the model’s own)' if row.get('own_sigma') else ''}"
    settings = f"{sigma}, n {row['n']}, alpha {row['alpha']:g}"
    name = f"<b>{escape(Path(row['path']).name)}</b> with {escape(row['model'])}"
    if row["predicted"] == "abstain":
        return (
            f"{name}: the smoothed classifier <b>abstains</b>: the noisy copies do not agree enough to certify "
            f"(lower bound on the top class's share {row['p_A_lower']:.3f} ≤ 0.5; {settings})."
        )
    return (
        f"{name}: certified L2 radius <b>{row['radius_l2']:.3f}</b> (≈ {row['linf_equivalent_255']:.2f}/255 per "
        f"pixel value, L∞) for the smoothed classifier's call <b>{escape(row['predicted'])}</b> ({settings})."
        + escape(attack_comparison(row, attack))
    )


class CertifyMode(QObject):
    """The panel under the one-image result: which ONNX files to offer, the button, the certificate."""

    def __init__(self, page) -> None:
        super().__init__(page)
        self.page, self.ctx = page, page.ctx
        self.panel = CertifyPanel()
        self.panel.form.set_own_sigma(None, known=False)
        self.result: dict | None = None
        self.task: Task | None = None
        self.panel.form.button.clicked.connect(self.run)
        self.panel.model_combo.currentIndexChanged.connect(self._model_changed)
        page.form.models.currentItemChanged.connect(self.refresh_models)
        self.ctx.state.onnx_changed.connect(self.refresh_models)

    def refresh_models(self, *_args) -> None:
        """The run's ONNX files and the app's; the highlighted white-box model's file chosen."""
        run, opened = self.ctx.state.run, self.ctx.state.onnx_path
        onnx = dict(run.onnx) if run else {}
        models = [(f"Model {n} — {p.name}", p) for n, p in sorted(onnx.items())]
        if opened is not None and all(opened != p for _, p in models):
            models.append((opened.name, opened))
        current = self.page.form.current_model()
        self.panel.set_models(models, onnx.get(current[0]) if current else opened)

    def _model_changed(self) -> None:
        self.panel.form.set_own_sigma(None, known=False)  # known once it is certified with

    def _image(self) -> Path | None:
        key, path = self.page.form.source()
        if key == "image" and path is not None:
            return path
        shown = self.page.single.result
        return Path(shown["image_path"]) if shown else None

    def run(self) -> Task | None:
        model, image = self.panel.model(), self._image()
        if model is None or image is None:
            what = "no ONNX model: open a run folder with exported models" if model is None else "no image chosen"
            self.ctx.errors.show("Certify", ConfigError(f"{what}; choose one, then click Certify this image"))
            return None
        self.task = self.page.start_task(
            "Certify one image", certify_image, str(model), str(image), self.panel.form.config()
        )
        self.task.finished.connect(self.show_result)
        self.panel.show_text(f"Certifying {escape(image.name)} with {escape(model.name)}…")
        return self.page._follow(self.task, f"Certifying {image.name} (randomized smoothing)…")

    def show_result(self, row: dict) -> None:
        self.result = row
        if row["own_sigma"] and Path(row["model"]).name == (self.panel.model() or Path()).name:
            self.panel.form.set_own_sigma(row["sigma"])
        kind = "abstain" if row["predicted"] == "abstain" else "certified"
        self.panel.show_text(certificate_html(row, self.page.single.result), kind)
