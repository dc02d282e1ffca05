"""Every task of the Diagnose edition, CLI and app, in a process where PyTorch and the full edition's other packages
cannot be imported (as in the installed Diagnose edition): ``python tests/e2e/diagnose_edition.py RUN DATA OUT``.

RUN is a finished run folder (made by the full edition), DATA its labelled images, OUT a scratch folder. Prints one
``ok <task>`` line per task and, last, the full-only modules that were imported (none, or the test fails); exits 1
at the first task that fails.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository (this folder holds no 'engine')
from tests.notorch import FULL_ONLY, BlockFullOnly  # noqa: E402

sys.meta_path.insert(0, BlockFullOnly())
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def cli(*args: str, code: int = 0) -> None:
    from desktop_app.launcher import main

    got = main([str(a) for a in args])
    if got != code:
        raise SystemExit(f"histoguard {' '.join(map(str, args))} exited {got}, not {code}")


def cli_tasks(run: Path, data: Path, out: Path) -> None:
    images = sorted(data.rglob("*.png"))[:4]
    cli("data", "--data", data)
    cli("demo-data", out / "demo", "--patients-per-class", "1", "--images-per-patient", "2")
    cli("predict", "--model", run / "model_a.onnx", *images, "--out", out / "predictions.csv")
    cli("certify", "--model", run / "model_a.onnx", *images[:2], "--sigma", "0.25", "--n", "50",
        "--out", out / "certificates.csv")  # fmt: skip
    cli("blackbox", "--model", run / "model_a.onnx", "--data", data, "--eps", "64/255", "--queries", "10",
        "--limit", "6", "--out", out / "blackbox.json")  # fmt: skip
    cli("quantize", "--model", run / "model_a.onnx", "--data", data, "--calibration-images", "8",
        "--out", out / "model_a.int8.onnx")  # fmt: skip
    cli("predict", "--model", out / "model_a.int8.onnx", *images, "--out", out / "predictions-int8.csv")
    cli("demo-slide", out / "slide.tiff", "--side", "1024")
    cli("slide", out / "slide.tiff", "--model", run / "model_a.onnx", "--out", out / "slide")
    cli("explain", "--model", run / "model_a.onnx", *images[:2], "--out", out / "explain")  # occlusion
    cli("explain", "--model", run / "model_a.onnx", "--method", "gradcam", images[0], "--out", out / "no-map", code=2)
    cli("train", "--data", data, "--out", out / "no-run", code=2)  # needs PyTorch: one line, exit 2
    robust = ["--robustness", "fgsm"]  # a white-box attack: refused before anything is predicted
    cli("slide", out / "slide.tiff", "--model", run / "model_a.onnx", "--out", out / "x", *robust, code=2)
    print("ok cli: data, demo-data, predict, certify, explain, blackbox, quantize, demo-slide, slide; train, "
          "--robustness and explain --method gradcam refused")  # fmt: skip


def wait(app, window, what: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while window.ctx.tasks.busy:
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        app.processEvents()
        time.sleep(0.01)
    if window.ctx.errors.history:
        raise SystemExit(f"{what}: error dialog {window.ctx.errors.history[-1]}")


def app_tasks(run: Path, data: Path, out: Path) -> dict:
    from PySide6.QtCore import QSettings

    from desktop_app.app import build_window, get_app

    app = get_app()
    window = build_window(QSettings(str(out / "settings.ini"), QSettings.Format.IniFormat))
    window.show()
    done: dict = {"title": window.windowTitle()}
    window.controller.open_dataset(data)
    wait(app, window, "the dataset")
    done["dataset_images"] = len(window.ctx.state.dataset.records)
    if window.controller.open_run(run) is None:
        raise SystemExit(f"the run folder did not open: {window.ctx.errors.history}")
    wait(app, window, "the run")
    results = window.page("ResultsPage")
    results.export_report(out / "report.pdf")
    wait(app, window, "the report export")
    done["report"] = sorted(p.name for p in out.glob("report*"))

    diagnose = window.page("DiagnosePage")
    window.ctx.state.set_onnx(run / "model_b.onnx")
    wait(app, window, "the model")
    diagnose.add_inputs(sorted(data.rglob("*.png"))[:3])
    diagnose.run_prediction()
    wait(app, window, "the prediction")
    diagnose.certify.form.n.setValue(100)  # Model B has no sigma of its own: the spin box's 0.25
    diagnose.certify.run()
    wait(app, window, "the certificates")
    diagnose.export_csv(out / "diagnose.csv")
    diagnose.table.selectRow(0)
    diagnose.explain.bar.show_button.click()  # the occlusion map of the selected image
    wait(app, window, "the occlusion map")
    diagnose.explain.export_png(out / "diagnose-map.png")
    wait(app, window, "the map's export")
    bar = diagnose.explain.bar
    done["map"] = {"method": diagnose.explain.result["method"], "shown": diagnose.image_view.has_map(),
                   "methods": [bar.method.itemData(i) for i in range(bar.method.count())
                               if bar.method.model().item(i).isEnabled()]}  # fmt: skip
    done["diagnosed"] = [r.get("predicted") for r in diagnose.rows]
    done["certified"] = [r.get("certified_call") for r in diagnose.rows]

    stress = window.page("StressPage")
    stress.bb_form.set_source("split", run)
    stress.bb_form.queries_spin.setValue(10)
    stress.bb_form.limit_spin.setValue(6)
    stress.blackbox.run()
    wait(app, window, "the Stress page's black-box attack")
    done["blackbox"] = [r["eps"] for r in stress.blackbox.result["results"]]
    done["white_box_enabled"] = stress.mode_combo.model().item(stress.mode_combo.findData("white")).isEnabled()

    slides = window.page("SlidesPage")
    slides.open_slide(out / "slide.tiff")
    wait(app, window, "the slide")
    slides.run_prediction()
    wait(app, window, "the slide prediction")
    slides.export_to(out / "slide-app")
    wait(app, window, "the slide export")
    done["slide_tiles"] = len(slides.prediction.tiles)
    done["robustness_enabled"] = slides.form.robust_button.isEnabled()
    done["train_enabled"] = window.page("TrainPage").start_button.isEnabled()
    window.ctx.tasks.cancel_all()
    window.ctx.tasks.wait(10_000)
    window.close()
    print("ok app: dataset, run, report export, Diagnose page (Certify, occlusion map), Stress page black-box, Slides "
          "page")  # fmt: skip
    return done


if __name__ == "__main__":
    run_dir, data_dir, out_dir = (Path(a) for a in sys.argv[1:4])
    cli_tasks(run_dir, data_dir, out_dir)
    summary = app_tasks(run_dir, data_dir, out_dir)
    print("summary " + json.dumps(summary))
    print(f"full-only modules imported: {sorted(m for m in sys.modules if m.split('.')[0] in FULL_ONLY)}")
