"""The ``histoguard`` entry point: no arguments (or ``gui``) opens the desktop app, other arguments run
the command line. Only this module knows both, so the engine never imports the app."""

from __future__ import annotations

import argparse
import os
import sys


def gui_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="histoguard gui", description="Open the HistoGuard desktop app.")
    parser.add_argument("--run", metavar="DIR", help="open this run folder")
    parser.add_argument("--data", metavar="DIR", help="open this dataset folder")
    parser.add_argument(
        "--screenshots",
        metavar="DIR",
        help="open every page with the demo data, save one PNG per page (1280x800) into DIR and exit; "
        "with --run, show that run (otherwise a tiny run is trained first)",
    )
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="check this installation and exit (0 = passed): open the main window offscreen, load a tiny ONNX "
        "model and predict one synthetic image on the Diagnose page",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    from engine.core.runtime import tune_malloc

    tune_malloc()  # before torch allocates anything (engine/runtime.py says why)
    if not argv or argv[0] in ("gui", "--self-test"):
        return launch_app(argv[1:] if argv and argv[0] == "gui" else argv)
    from engine.cli import main as cli_main

    return cli_main(argv)


def launch_app(argv: list[str] | None = None) -> int:
    args = gui_parser().parse_args(argv or [])
    if args.self_test:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # the self-test needs no screen
    return run_app(screenshots=args.screenshots, run=args.run, dataset=args.data, self_test=args.self_test)


def run_app(*, screenshots: str | None = None, run: str | None = None, dataset: str | None = None,
            self_test: bool = False) -> int:  # fmt: skip
    """The window (opening ``run`` / ``dataset``), the screenshot pass or the self-test, until it ends."""
    try:
        from desktop_app.app import build_window, get_app
    except ImportError as exc:  # a broken Qt install: say what to do instead of a traceback
        sys.stderr.write(
            f"The desktop app cannot start: {exc}.\nReinstall with `pip install histoguard` (PySide6) or use the "
            "command line: `histoguard --help`.\n"
        )
        return 2
    app = get_app()
    if self_test:
        from desktop_app.tools.selftest import self_test as check

        return check(app)
    if screenshots:
        from pathlib import Path

        from desktop_app.tools.screenshots import take_screenshots

        return take_screenshots(app, Path(screenshots), run=run)
    window = build_window()
    window.ctx.errors.install_excepthook()
    window.show()
    window.controller.detect_device()
    if run:
        window.controller.open_run(run)
    if dataset:
        window.controller.open_dataset(dataset)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
