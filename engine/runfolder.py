"""The run folder: config, split, log, checkpoints, ONNX files and reports of one experiment.

Nothing in an existing run folder is overwritten unless the caller passes ``force`` (start again) or
``resume`` (continue the same configuration from its checkpoints).
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from engine import __version__
from engine.config import ExperimentConfig
from engine.errors import RunFolderError
from engine.fileio import write_json

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
        if root.exists() and any(root.iterdir()):
            return cls._reuse(root, config, force, resume)
        return False

    @classmethod
    def prepare(
        cls, root: str | Path, config: ExperimentConfig, *, force: bool = False, resume: bool = False
    ) -> RunFolder:
        """Check ``root`` (see ``check``), delete an old run there only with ``force``, and write config.json."""
        root = Path(root).expanduser()
        resuming = cls.check(root, config, force=force, resume=resume)
        if root.exists() and force and not resuming:
            log.warning("--force: deleting the previous run in %s", root)
            shutil.rmtree(root)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunFolderError(f"cannot create run folder {root}: {exc.strerror}") from exc
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
        handler = logging.FileHandler(self.path("log.txt"), encoding="utf-8")
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


def _read_config(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
