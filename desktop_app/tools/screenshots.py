"""``histoguard gui --screenshots DIR``: open every page with the demo data, save a PNG of each, exit.

Used to show the app in the README and by the tests. The demo dataset is generated (or reused) in the
user's data folder; without ``--run`` a tiny run (small CNN, 32 px, 3 epochs) is trained first so the
Train, Stress-test, Results and Diagnose pages have something to show. One PNG per page, then the extra
views of ``screenshot_actions.EXTRA_SHOTS`` (the Results page's robustness tab). Settings go to a
temporary file.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from PySide6.QtWidgets import QApplication

from desktop_app.app import build_window
from desktop_app.tools.screenshot_actions import ACTIONS, EXTRA_SHOTS
from desktop_app.tools.waiting import settle
from engine.core.config import DataConfig, ExperimentConfig, TrainConfig

log = logging.getLogger(__name__)

SIZE = (1280, 800)
# input_mpp: the demo slide's scale (engine.data.demo_slide), as the demo's own models record it
TINY = TrainConfig(
    arch="small_cnn", image_size=32, epochs=3, batch_size=32, lr=3e-3, weights="none", device="cpu", input_mpp=5.257
)


def _run_experiment(cfg, out, *, on_progress=None, cancel=None):
    from engine import api

    api.run_experiment(cfg, out, force=True, on_progress=on_progress, cancel=cancel)
    return out


def take_screenshots(app: QApplication, out_dir: Path, run: str | None = None) -> int:
    out_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="histoguard-shots-"))
    os.environ.setdefault("HISTOGUARD_SETTINGS", str(scratch / "settings.ini"))
    window = build_window()
    window.app = app
    window.resize(*SIZE)
    window.show()
    window.controller.detect_device()
    window.controller.try_demo()
    settle(app, window)
    if window.ctx.errors.history:
        raise RuntimeError(f"the demo dataset could not be opened: {window.ctx.errors.history[-1][1]}")
    if run is None:
        cfg = ExperimentConfig(data=window.ctx.state.data_config or DataConfig(demo=True), train=TINY, eps=8 / 255)
        window.ctx.tasks.start("Train screenshot run", _run_experiment, cfg, scratch / "run")
        settle(app, window)
        run = str(scratch / "run")
    if window.controller.open_run(run) is None:
        raise RuntimeError(f"cannot open the run folder {run}: {window.ctx.errors.history[-1][1]}")
    settle(app, window)
    shots = [(page.title.lower().replace(" ", "-"), name, ACTIONS.get(name)) for name, page in window.pages.items()]
    for i, (file_name, name, action) in enumerate([*shots, *EXTRA_SHOTS], start=1):
        window.show_page(name)
        if action is not None and action(window.pages[name], window) is False:
            continue
        settle(app, window)
        path = out_dir / f"{i}-{file_name}.png"
        window.grab().save(str(path))
        log.info("saved %s", path)
    window.close()
    errors = window.ctx.errors.history
    if errors:
        log.error("errors while taking screenshots: %s", errors)
        return 1
    return 0
