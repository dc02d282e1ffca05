"""The run folder: config, split, log, checkpoints, ONNX files and reports of one experiment.

Nothing in an existing run folder is overwritten unless the caller passes ``force`` (start again) or
``resume`` (continue the same configuration from its checkpoints). Every file in it is written atomically
(``engine.core.fileio``) except the append-only ``log.txt``; opening a folder for a run removes the temp files a
killed process left there.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from engine import __version__
from engine.core.config import ExperimentConfig
from engine.core.errors import RunFolderError
from engine.core.fileio import is_temp, remove_stale_temps, write_error, write_json

log = logging.getLogger(__name__)
CONFIG = "config.json"


@dataclass(frozen=True)
class RunFolder:
    root: Path

    def path(self, name: str) -> Path:
        return self.root / name

    @classmethod
    def check(cls, root: str | Path, config: ExperimentConfig, *, force: bool = False, resume: bool = False) -> bool:
        """Raise RunFolderError unless ``root`` may be used; True when an earlier run there will be resumed."""
        root = Path(root).expanduser()
        if root.exists() and not root.is_dir():
            raise RunFolderError(f"{root} is a file; give a folder for the run")
        if root.exists() and any(not is_temp(p.name) for p in root.iterdir()):
            return cls._reuse(root, config, force, resume)
        return False

    @classmethod
    def prepare(
        cls, root: str | Path, config: ExperimentConfig, *, force: bool = False, resume: bool = False
    ) -> RunFolder:
        """Check ``root`` (see ``check``), delete an old run there only with ``force``, remove temp files that
        a killed run left, and write config.json."""
        root = Path(root).expanduser()
        resuming = cls.check(root, config, force=force, resume=resume)
        if root.exists() and force and not resuming:
            log.warning("--force: deleting the previous run in %s", root)
            shutil.rmtree(root)
        if root.is_dir():
            remove_stale_temps(root)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_error(root, exc) from exc
        run = cls(root)
        if not run.path(CONFIG).exists():
            write_json(run.path(CONFIG), {"histoguard_version": __version__, **config.to_dict()})
        return run

    @staticmethod
    def _reuse(root: Path, config: ExperimentConfig, force: bool, resume: bool) -> bool:
        saved = _read_config(root / CONFIG)
        if saved is None:
            raise RunFolderError(
                f"{root} is not empty and is not a HistoGuard run folder; choose a new or empty folder"
            )
        if resume:
            saved.pop("histoguard_version", None)
            if ExperimentConfig.from_dict(saved) != config:
                raise RunFolderError(
                    f"{root} holds a run with another configuration; resume it with the same "
                    "settings, or pass --force to start again there"
                )
            log.info("resuming the run in %s", root)
            return True
        if not force:
            raise RunFolderError(f"{root} already holds a run; pass --resume to continue it or --force to replace it")
        return False

    @staticmethod
    def saved_split(root: str | Path, resuming: bool) -> Path | None:
        """The split.csv of the run being resumed, so the resumed run uses exactly the same split."""
        path = Path(root).expanduser() / "split.csv"
        return path if resuming and path.is_file() else None

    @contextlib.contextmanager
    def logging_to_file(self) -> Iterator[None]:
        """Copy the engine's log records into ``log.txt`` while the run lasts."""
        try:
            handler = _RunLog(self.path("log.txt"), encoding="utf-8")
        except OSError as exc:
            raise write_error(self.path("log.txt"), exc) from exc
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

    def handleError(self, record: logging.LogRecord) -> None:
        exc = sys.exc_info()[1]
        if not isinstance(exc, OSError):  # a bad format string: logging's usual report
            super().handleError(record)
            return
        self.failed = True
        log.warning("%s; the rest of this run's log goes to the console only", write_error(self.baseFilename, exc))


def _read_config(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
