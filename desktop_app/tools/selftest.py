"""``histoguard --self-test``: prove an installed app works, offscreen, in seconds, and exit 0.

It opens the main window, writes a tiny ONNX model (engine.deploy.tiny: no PyTorch, so the Diagnose
edition runs it too) and two synthetic tissue images (one per class) into a temporary folder, loads the model
and predicts an image through the Diagnose page exactly as a user would, checks the result row, runs the
Stress page's black-box mode (the Square attack on the model, over the two labelled images) and predicts the
image opened as a slide. Any error dialog, a missing result or a timeout fails it (exit 1) with the reason.
The installers run it after installing (packaging/), and so do the tests (tests/desktop_app/tools/).
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QSettings

from desktop_app.app import build_window
from engine import __version__

log = logging.getLogger(__name__)
TIMEOUT_S = 120.0


class SelfTestFailed(RuntimeError):
    pass


def _wait(app, done: Callable[[], bool], what: str, deadline: float) -> None:
    while not done():
        if time.monotonic() > deadline:
            raise SelfTestFailed(f"timed out waiting for {what}")
        app.processEvents()
        QCoreApplication.sendPostedEvents()
        time.sleep(0.01)


def _check_no_errors(window) -> None:
    if window.ctx.errors.history:
        title, message = window.ctx.errors.history[0]
        raise SelfTestFailed(f"error dialog '{title}': {message}")


def _inputs(folder: Path) -> tuple[Path, Path]:
    from engine.data.demo import generate_demo_dataset
    from engine.deploy.tiny import write_tiny_model

    model = write_tiny_model(folder / "selftest.onnx")
    demo = generate_demo_dataset(folder / "demo", patients_per_class=1, images_per_patient=1)
    image = sorted(demo.rglob("*.png"))[0]
    return model, image, demo


def _slide_check(image: Path, model: Path) -> str:
    """The whole-slide path: OpenSlide's library loads (openslide-bin, bundled) and the image, opened as a
    one-level slide, is tiled and predicted."""
    import openslide

    from engine import api

    pred = api.predict_slide(image, model, device="cpu")
    if not len(pred.tiles):
        raise SelfTestFailed(f"no tissue tiles found in {image.name} opened as a slide")
    return (
        f"slides: OpenSlide {openslide.__library_version__}, {len(pred.tiles)} tissue tiles predicted in {image.name}"
    )


def _stain_check(image: Path) -> str:
    """Stain normalisation (torchstain's numpy backend, bundled): a Macenko and a Reinhard reference fitted on the
    image and applied to it."""
    import numpy as np

    from engine.data.decode import load_rgb
    from engine.data.stain_norm import fit_reference, normalise

    pixels = np.asarray(load_rgb(image), np.uint8)[:128, :128]
    done = []
    for method in ("macenko", "reinhard"):
        out = normalise(pixels, fit_reference(method, pixels))
        if out.shape != pixels.shape or out.dtype != np.uint8:
            raise SelfTestFailed(f"{method} stain normalisation returned {out.dtype} {out.shape}")
        done.append(f"{method} (mean change {np.abs(out.astype(int) - pixels).mean():.1f} grey levels)")
    return "stain normalisation: " + ", ".join(done)


def _blackbox_check(app, window, model: Path, labelled: Path, deadline: float) -> str:
    """The Stress page's black-box mode, as a user runs it: the Square attack on ``model`` over a labelled folder."""
    window.show_page("Stress test")
    page = window.page("StressPage")
    page.mode_combo.setCurrentIndex(page.mode_combo.findData("black"))
    form = page.bb_form
    form.set_model(model)
    form.set_source("folder", labelled)
    form.set_eps_k(8)
    form.queries_spin.setValue(20)
    if page.blackbox.run() is None:
        raise SelfTestFailed("the Stress page did not start the black-box attack")
    _wait(app, lambda: not window.ctx.tasks.busy, "the black-box attack", deadline)
    _check_no_errors(window)
    result = page.blackbox.result
    if result is None or [r["eps"] for r in result["results"]] != [0.0, 8 / 255]:
        raise SelfTestFailed(f"the black-box attack gave no result for eps 0 and 8/255: {result!r}")
    clean, attacked = (r["accuracy"] for r in result["results"])
    return (
        f"black-box: Square attack (20 queries) on {result['n_images']} images, accuracy {clean:.2f} clean, "
        f"{attacked:.2f} at 8/255 ({result['provider']})"
    )


def self_test(app, out=sys.stdout, timeout_s: float = TIMEOUT_S) -> int:
    """Run the self-test with ``app`` (a QApplication); print each step to ``out``; 0 when it passed."""
    from engine.core.edition import edition

    start = time.monotonic()
    deadline = start + timeout_s

    def say(text: str) -> None:
        out.write(f"self-test: {text}\n")
        out.flush()

    window = None
    with tempfile.TemporaryDirectory(prefix="histoguard-selftest-") as tmp:
        try:
            say(f"HistoGuard {__version__}, {edition()} edition, Python {sys.version.split()[0]}")
            settings = QSettings(str(Path(tmp) / "settings.ini"), QSettings.Format.IniFormat)
            window = build_window(settings)
            window.show()
            _wait(app, window.isVisible, "the main window", deadline)
            say(f"main window shown ({len(window.pages)} pages) in {time.monotonic() - start:.1f} s")
            model, image, labelled = _inputs(Path(tmp))
            window.show_page("Diagnose")
            page = window.page("DiagnosePage")
            window.ctx.state.set_onnx(model)
            _wait(app, lambda: page.model_info is not None or window.ctx.errors.history, "the model", deadline)
            _check_no_errors(window)
            info = page.model_info
            say(f"model loaded: {model.name}, sha256 {info.sha256[:16]}…, {info.provider}")
            page.add_inputs([image])
            if page.run_prediction() is None:
                raise SelfTestFailed("the Diagnose page did not accept the model and the image")
            _wait(app, lambda: not window.ctx.tasks.busy, "the prediction", deadline)
            _check_no_errors(window)
            rows = page.rows
            if len(rows) != 1 or rows[0].get("error") or "predicted" not in rows[0]:
                raise SelfTestFailed(f"expected one prediction, got {rows!r}")
            row = rows[0]
            probs = [v for k, v in row.items() if k.startswith("p_")]
            if len(probs) != 2 or abs(sum(probs) - 1.0) > 1e-4:
                raise SelfTestFailed(f"probabilities do not sum to 1: {probs}")
            say(f"predicted {row['predicted']} (p = {max(probs):.3f}) for {image.name}")
            say(_blackbox_check(app, window, model, labelled, deadline))
            say(_slide_check(image, model))
            say(_stain_check(image))
            say(f"passed in {time.monotonic() - start:.1f} s")
            return 0
        except SelfTestFailed as exc:
            say(f"FAILED: {exc}")
            return 1
        except Exception as exc:  # the self-test reports every failure as a result, never a traceback only
            log.exception("self-test failed")
            say(f"FAILED: {type(exc).__name__}: {exc}")
            return 1
        finally:
            if window is not None:
                window.ctx.tasks.cancel_all()
                window.ctx.tasks.wait(10_000)
                window.close()
