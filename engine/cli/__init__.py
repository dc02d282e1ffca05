"""The ``histoguard`` command line (``desktop_app.launcher`` opens the app when there are no arguments).

Errors the user can fix print one line and exit 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import logging
import os
import sys


def main(argv: list[str] | None = None) -> int:
    from engine.cli.parser import build_parser

    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.command is None:
        parser.print_help()
        return 0
    _setup_logging(args.debug, args.verbose)
    from engine.core.runtime import tune_malloc

    tune_malloc()
    return _run(args)


def _setup_logging(debug: bool, verbose: bool) -> None:
    from engine.cli.progress_bar import TqdmLoggingHandler

    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    if os.environ.get("WORLD_SIZE", "1") not in ("", "0", "1") and os.environ.get("RANK", "0") not in ("", "0"):
        # a torchrun worker other than rank 0, which logs for the whole job
        level = logging.ERROR
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, TqdmLoggingHandler)]:
        root.removeHandler(old)
    handler = TqdmLoggingHandler(level)
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)


def _run(args) -> int:
    from engine.cli.commands import COMMANDS
    from engine.cli.progress_bar import TerminalProgress
    from engine.core.errors import Cancelled, EngineError

    progress = TerminalProgress()
    try:
        return COMMANDS[args.command](args, progress)
    except Cancelled as exc:
        print(f"histoguard: {exc}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("histoguard: interrupted; an experiment can continue with --resume", file=sys.stderr)
        return 130
    except EngineError as exc:
        if args.debug:
            raise
        print(f"histoguard: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from engine.core.edition import is_missing_torch, needs_full_edition

        if args.debug:
            raise
        if is_missing_torch(exc):  # the Diagnose edition: say what it can do instead
            print(f"histoguard: error: {needs_full_edition(f'`histoguard {args.command}`')}", file=sys.stderr)
            return 2
        print(
            f"histoguard: unexpected error: {type(exc).__name__}: {exc} (run again with --debug for details)",
            file=sys.stderr,
        )
        return 1
    finally:
        progress.close()


if __name__ == "__main__":
    sys.exit(main())
