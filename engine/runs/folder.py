"""The run folder: THE on-disk contract of HistoGuard. One class writes it and reads it, for the CLI, the app and
every workflow, so its layout is written down once, here:

    config.json        the ExperimentConfig the run was made with (+ histoguard_version)
    split.csv          every image, its label, patient and split (image paths absolute: data lives where it lives)
    log.txt            the engine's log of the run
    model_x/best.pt    the kept checkpoint of Model X (last.pt: the resumable state), x = a, b, c
    model_x.onnx       its ONNX export (+ model_x.onnx.sha256), recorded in SHA256SUMS
    report.json        the results (written last: it marks a finished run), with report.md/html and the figures
    train.json         what ``histoguard train`` writes instead of a report

Every path stored inside the folder's own files is relative to the folder, so a run copied to another
workstation, or opened from another working directory, still finds its files; runs written before that
(paths relative to the directory they were started from) still open (``resolve``).

Nothing in an existing run folder is overwritten unless the caller passes ``force`` (start again) or
``resume`` (continue the same configuration). While a process writes a run it holds the folder's lock
(``engine.runs.lock``): a second writer is refused. Every file is written atomically (``engine.core.fileio``)
except the append-only ``log.txt``; opening a folder for a run removes the temp files a killed process left.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from engine import __version__
from engine.core.config import ExperimentConfig
from engine.core.errors import EngineError, RunFolderError, option
from engine.core.fileio import is_temp, remove_stale_temps, write_all, write_error, write_json
from engine.runs.cv import first_fold, is_cv_folder, summary_of_fold
from engine.runs.lock import LOCK_FILE, RunLock, holder
from engine.runs.log import logging_to

log = logging.getLogger(__name__)
CONFIG, SPLIT, REPORT, LOG, SUMS, TRAIN_RECORD = (
    "config.json",
    "split.csv",
    "report.json",
    "log.txt",
    "SHA256SUMS",
    "train.json",
)
CHECKPOINT, LAST = "best.pt", "last.pt"
MODEL_NAMES = ("A", "B", "C")  # C: on-the-fly adversarial training; older runs have A and B
NOT_A_RUN = "open a folder made by the Train page or by `histoguard experiment --out`"


@dataclass(frozen=True)
class RunContents:
    """What a run folder holds, as the app and the CLI show it."""

    path: Path
    config: ExperimentConfig
    report: dict | None  # report.json once the run has finished
    checkpoints: dict[str, Path]  # "A"/"B"/"C" -> best.pt
    onnx: dict[str, Path]  # "A"/"B"/"C" -> model_x.onnx
    cross_validation: dict | None = None  # the cv.json of the cross-validation this run is a fold of

    @property
    def finished(self) -> bool:
        return self.report is not None

    @property
    def synthetic(self) -> bool:
        return bool(self.report and self.report.get("synthetic_data")) or self.config.data.demo

    @property
    def classes(self) -> list[str] | None:
        return list((self.report or {}).get("dataset", {}).get("classes") or []) or None


@dataclass(frozen=True)
class RunFolder:
    root: Path
    lock: RunLock | None = field(default=None, compare=False, repr=False)  # held while this process writes

    # --- the layout ----------------------------------------------------------------------------------
    def path(self, name: str) -> Path:
        return self.root / name

    def model_dir(self, model: str) -> Path:
        return self.root / f"model_{model.lower()}"

    def checkpoint(self, model: str) -> Path:
        return self.model_dir(model) / CHECKPOINT

    def onnx(self, model: str) -> Path:
        return self.root / f"model_{model.lower()}.onnx"

    def relative(self, path: str | Path) -> str:
        """``path`` as stored in the folder's files: relative to the folder (POSIX separators), or absolute
        when it lies outside."""
        path = Path(path)
        try:
            return PurePosixPath(path.absolute().relative_to(self.root.absolute())).as_posix()
        except ValueError:
            return str(path.absolute())

    def resolve(self, stored: str | Path) -> Path:
        """A path read from the folder's files. Relative paths are the folder's (this version's); an old run's
        path relative to where it was started ("runs/demo/model_a.onnx") is found by its trailing parts."""
        stored = Path(stored)
        if stored.is_absolute():
            return stored
        parts = stored.parts
        for i in range(len(parts)):
            candidate = self.root.joinpath(*parts[i:])
            if candidate.exists():
                return candidate
        return self.root / stored

    @staticmethod
    def of_model(path: str | Path) -> RunFolder | None:
        """The run folder a model file belongs to (``<run>/model_x.onnx``, ``<run>/model_x/best.pt``), if any."""
        path = Path(path)
        for folder in (path.parent, path.parent.parent):
            if (folder / CONFIG).is_file():
                return RunFolder(folder)
        return None

    @staticmethod
    def checkpoint_beside(onnx: str | Path) -> Path:
        """Where a run keeps the checkpoint of an exported model: <run>/model_a.onnx -> <run>/model_a/best.pt."""
        return Path(onnx).with_suffix("") / CHECKPOINT

    # --- reading -------------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path) -> RunFolder:
        """The run folder ``path``; a cross-validation folder (``engine.runs.cv``) opens at its first fold."""
        root = Path(path).expanduser()
        if not (root / CONFIG).is_file() and is_cv_folder(root):
            root = first_fold(root)
        if not (root / CONFIG).is_file():
            raise RunFolderError(f"{root} is not a HistoGuard run folder (it has no {CONFIG}); {NOT_A_RUN}")
        return cls(root)

    def read_config(self) -> ExperimentConfig:
        saved = _read_json(self.path(CONFIG))
        if saved is None:
            raise RunFolderError(f"{self.path(CONFIG)} cannot be read; {NOT_A_RUN}")
        try:
            return ExperimentConfig.from_dict(saved)
        except (ValueError, KeyError, TypeError, EngineError) as exc:
            raise RunFolderError(
                f"{self.path(CONFIG)} cannot be read ({exc}); it was not written by this HistoGuard"
            ) from exc

    def read_report(self) -> dict | None:
        if not self.path(REPORT).is_file():
            return None
        report = _read_json(self.path(REPORT))
        if report is None:
            raise RunFolderError(f"{self.path(REPORT)} cannot be read; finish the run again with {option('resume')}")
        return report

    def contents(self) -> RunContents:
        present = {n: p for n in MODEL_NAMES for p in [self.checkpoint(n)] if p.is_file()}
        exported = {n: p for n in MODEL_NAMES for p in [self.onnx(n)] if p.is_file()}
        cv = summary_of_fold(self.root)
        return RunContents(self.root, self.read_config(), self.read_report(), present, exported, cv)

    def report_files(self, report: dict | None = None) -> list[Path]:
        """Every file the report names (ONNX files and checkpoints), resolved in this folder."""
        report = self.read_report() if report is None else report
        stored = [v["path"] for v in (report or {}).get("onnx", {}).values()]
        stored += [t["checkpoint"] for t in (report or {}).get("training", {}).values() if t.get("checkpoint")]
        return [self.resolve(s) for s in stored]

    @classmethod
    def state(cls, root: str | Path, config: ExperimentConfig | None) -> str:
        """What a folder offers a new run with ``config``: 'new', 'file', 'foreign' (not a run folder), 'locked'
        (being written now), 'resumable' (this config, unfinished), 'finished' (this config) or 'other'."""
        root = Path(root).expanduser()
        if root.exists() and not root.is_dir():
            return "file"
        if not _holds_anything(root):
            return "new"
        if holder(root):
            return "locked"
        saved = _read_json(root / CONFIG)
        if saved is None:
            return "foreign"
        if config is None or _config_of(saved) != config:
            return "other"
        return "finished" if (root / REPORT).is_file() else "resumable"

    # --- writing -------------------------------------------------------------------------------------
    @classmethod
    def check(cls, root: str | Path, config: ExperimentConfig, *, force: bool = False, resume: bool = False) -> bool:
        """Raise RunFolderError unless ``root`` may be used; True when an earlier run there will be resumed."""
        root = Path(root).expanduser()
        if root.exists() and not root.is_dir():
            raise RunFolderError(f"{root} is a file; give a folder for the run")
        if not _holds_anything(root):
            return False
        if who := holder(root):
            raise RunFolderError(
                f"{root} is being written by another HistoGuard process ({who}); wait until it has finished, or "
                "choose another folder"
            )
        return cls._reuse(root, config, force, resume)

    @classmethod
    def prepare(
        cls, root: str | Path, config: ExperimentConfig, *, force: bool = False, resume: bool = False
    ) -> RunFolder:
        """Check ``root`` (see ``check``), take its lock, delete an old run there only with ``force``, remove temp
        files that a killed run left, and write config.json. The returned folder holds the lock until
        ``release`` (or the end of a ``with`` block, or of the process)."""
        root = Path(root).expanduser()
        resuming = cls.check(root, config, force=force, resume=resume)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_error(root, exc) from exc
        run = cls(root, RunLock(root).acquire())
        try:
            if force and not resuming:
                run._empty()
            remove_stale_temps(root)
            if not run.path(CONFIG).exists():
                write_json(run.path(CONFIG), {"histoguard_version": __version__, **config.to_dict()})
        except BaseException:
            run.release()
            raise
        return run

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def _empty(self) -> None:
        log.warning("deleting the previous run in %s to start again", self.root)
        for entry in self.root.iterdir():
            if entry.name != LOCK_FILE:
                shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()

    @staticmethod
    def _reuse(root: Path, config: ExperimentConfig, force: bool, resume: bool) -> bool:
        saved = _read_json(root / CONFIG)
        if saved is None:
            raise RunFolderError(
                f"{root} is not empty and is not a HistoGuard run folder; choose a new or empty folder"
            )
        if resume:
            if _config_of(saved) != config:
                raise RunFolderError(
                    f"{root} holds a run with another configuration; resume it with the same settings, or start "
                    f"again there with {option('force')}"
                )
            log.info("resuming the run in %s", root)
            return True
        if not force:
            raise RunFolderError(
                f"{root} already holds a run; continue it with {option('resume')} or replace it with {option('force')}"
            )
        return False

    @staticmethod
    def saved_split(root: str | Path, resuming: bool) -> Path | None:
        """The split.csv of the run being resumed, so the resumed run uses exactly the same split."""
        path = Path(root).expanduser() / SPLIT
        return path if resuming and path.is_file() else None

    def logging_to_file(self):
        """Copy the engine's log records into ``log.txt`` while the run lasts (a context manager)."""
        return logging_to(self.path(LOG))

    def write_files(self, files: dict[str, bytes | str]) -> None:
        """Write ``files`` (names in the folder) all or nothing on a write error, renamed in their order: put the
        one that marks the set as finished (report.json) last."""
        write_all({self.path(name): data for name, data in files.items()})


def _holds_anything(root: Path) -> bool:
    """Anything but temp files of killed writes and the lock file."""
    return root.is_dir() and any(not is_temp(p.name) and p.name != LOCK_FILE for p in root.iterdir())


def _config_of(saved: dict) -> ExperimentConfig | None:
    try:
        return ExperimentConfig.from_dict({k: v for k, v in saved.items() if k != "histoguard_version"})
    except (ValueError, KeyError, TypeError, EngineError):  # written by another version, or invalid now
        return None


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
