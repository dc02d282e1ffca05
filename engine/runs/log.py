"""``log.txt``: the engine's log records of a run, copied into its folder while the run lasts."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

from engine.core.fileio import write_error

log = logging.getLogger(__name__)


@contextlib.contextmanager
def logging_to(path: Path) -> Iterator[None]:
    """Copy the engine's records (INFO and above) into ``path`` while the block runs."""
    try:
        handler = _RunLog(path, encoding="utf-8")
    except OSError as exc:
        raise write_error(path, exc) from exc
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    logger = logging.getLogger("engine")
    old_level = logger.level
    logger.addHandler(handler)
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        handler.close()


class _RunLog(logging.FileHandler):
    """log.txt, appended record by record rather than written atomically: rewriting the whole log per record
    would cost O(n^2), a kill can tear at most its last line, and every earlier line stays. A write that
    fails (full disk) stops this log with one warning on the console instead of a traceback per record."""

    failed = False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.failed:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        exc = sys.exc_info()[1]
        if not isinstance(exc, OSError):  # a bad format string: logging's usual report
            super().handleError(record)
            return
        self.failed = True
        log.warning("%s; the rest of this run's log goes to the console only", write_error(self.baseFilename, exc))
