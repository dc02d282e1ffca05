"""The ``histoguard`` entry point: no arguments opens the desktop app, arguments run the command line."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv:
        from engine.cli import main as cli_main

        return cli_main(argv)
    return launch_app()


def launch_app() -> int:
    """Open the desktop app. It is not built yet: say so and point to the command line."""
    print(
        "The HistoGuard desktop app is not available in this version yet; the command line is.\n"
        "Run `histoguard --help` for the commands, or `histoguard demo` for the whole study on synthetic data.",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
