"""The run folder: one class writes and reads its layout; paths inside it are relative to it; one writer at a time;
the temp files a killed writer left are cleaned when a run is opened; old run folders still open."""

from __future__ import annotations

import errno
import json
import logging
import os
import subprocess
import sys

import pytest

from engine.core.config import DataConfig, ExperimentConfig, TrainConfig
from engine.core.errors import RunFolderError
from engine.core.fileio import write_json, write_text
from engine.runs.folder import RunFolder
from engine.runs.lock import LOCK_FILE, holder

CONFIG = ExperimentConfig(DataConfig(data="x"), TrainConfig())


def test_a_folder_holding_only_temp_files_is_an_empty_run_folder(tmp_path):
    """A run killed before it wrote config.json leaves only a temp file: the folder can be used again."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / ".config.json.abcdefgh.tmp").write_text('{"half')
    assert RunFolder.check(run_dir, CONFIG) is False
    with RunFolder.prepare(run_dir, CONFIG) as run:
        assert sorted(p.name for p in run.root.iterdir()) == [LOCK_FILE, "config.json"]
    # control: a folder with a file of its own is not taken over
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(RunFolderError, match="not a HistoGuard run folder"):
        RunFolder.prepare(other, CONFIG)


def test_resuming_removes_temp_files_and_keeps_the_results(tmp_path):
    with RunFolder.prepare(tmp_path / "run", CONFIG) as run:
        write_text(run.path("report.md"), "complete")
    (run.root / ".report.md.abcdefgh.tmp").write_text("compl")
    (run.root / "model_a").mkdir()
    (run.root / "model_a" / ".last.pt.abcdefgh.tmp").write_bytes(b"PK")
    RunFolder.prepare(run.root, CONFIG, resume=True).release()
    assert sorted(p.name for p in run.root.rglob("*")) == [LOCK_FILE, "config.json", "model_a", "report.md"]
    assert run.path("report.md").read_text() == "complete"


def test_an_existing_run_is_replaced_only_when_asked(tmp_path):
    with RunFolder.prepare(tmp_path / "run", CONFIG) as run:
        write_text(run.path("report.json"), "{}")
    with pytest.raises(
        RunFolderError, match="already holds a run; continue it with --resume or replace it with --force"
    ):
        RunFolder.prepare(run.root, CONFIG)
    other = ExperimentConfig(DataConfig(data="y"), TrainConfig())
    with pytest.raises(RunFolderError, match="another configuration"):
        RunFolder.prepare(run.root, other, resume=True)
    with RunFolder.prepare(run.root, other, force=True):
        assert not run.path("report.json").exists()
        assert json.loads(run.path("config.json").read_text())["data"]["data"] == "y"


class _FullDisk:
    def write(self, _text):
        raise OSError(errno.ENOSPC, "No space left on device")

    def flush(self):
        pass


def test_a_full_disk_stops_the_run_log_with_one_warning(tmp_path, caplog, capsys):
    """log.txt is appended, not written atomically; when the disk fills it must not print a traceback per
    record (logging's default) nor end the run."""
    run = RunFolder.prepare(tmp_path / "run", CONFIG)
    engine_log = logging.getLogger("engine.test")
    with run, caplog.at_level(logging.INFO, logger="engine"), run.logging_to_file():
        handler = next(h for h in logging.getLogger("engine").handlers if h.baseFilename.endswith("log.txt"))
        handler.stream = _FullDisk()
        for i in range(3):
            engine_log.info("record %d", i)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "log.txt" in warnings[0] and "free some disk space" in warnings[0]
    assert "Logging error" not in capsys.readouterr().err
    # control: a plain FileHandler with the same full disk prints logging's error report
    plain = logging.FileHandler(tmp_path / "plain.log")
    plain.stream = _FullDisk()
    plain.handle(logging.makeLogRecord({"msg": "x", "levelno": logging.INFO}))
    assert "Logging error" in capsys.readouterr().err


def test_a_read_only_run_folder_is_reported_for_log_txt(tmp_path, monkeypatch):
    """Resuming writes nothing before log.txt: on a read-only folder its open is the first thing that fails."""
    run = RunFolder.prepare(tmp_path / "run", CONFIG)

    def read_only(self):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(logging.FileHandler, "_open", read_only)
    with run, pytest.raises(RunFolderError, match=r"log\.txt: Read-only file system; .*choose a writable folder"):
        with run.logging_to_file():
            pass


# --- one writer at a time ---------------------------------------------------------------------------------
def test_a_second_writer_in_the_same_process_is_refused_until_the_first_is_done(tmp_path):
    first = RunFolder.prepare(tmp_path / "run", CONFIG)
    assert holder(first.root) is not None and f"pid {os.getpid()}" in holder(first.root)
    for attempt in (lambda: RunFolder.check(first.root, CONFIG, resume=True),
                    lambda: RunFolder.prepare(first.root, CONFIG, resume=True)):  # fmt: skip
        with pytest.raises(RunFolderError, match="being written by another HistoGuard process .*pid"):
            attempt()
    assert RunFolder.state(first.root, CONFIG) == "locked"
    first.release()
    assert holder(first.root) is None and RunFolder.state(first.root, CONFIG) == "resumable"
    RunFolder.prepare(first.root, CONFIG, resume=True).release()  # the folder is free again


def test_a_second_writer_process_is_refused_and_a_killed_writer_frees_the_folder(tmp_path):
    """Another ``histoguard`` process is refused while one writes; the lock dies with its holder, even on SIGKILL."""
    code = (
        "import sys, time; from engine.core.config import DataConfig, ExperimentConfig, TrainConfig; "
        "from engine.runs.folder import RunFolder; "
        "run = RunFolder.prepare(sys.argv[1], ExperimentConfig(DataConfig(data='x'), TrainConfig())); "
        "print('LOCKED', flush=True); time.sleep(60)"
    )
    child = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "run")], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "LOCKED"
        with pytest.raises(RunFolderError, match=f"pid {child.pid}"):
            RunFolder.prepare(tmp_path / "run", CONFIG, resume=True)
    finally:
        child.kill()
        child.wait(30)
    RunFolder.prepare(tmp_path / "run", CONFIG, resume=True).release()


# --- paths stored in the folder --------------------------------------------------------------------------
def test_paths_are_stored_relative_to_the_folder_and_resolved_from_anywhere(tmp_path, monkeypatch):
    run = RunFolder(tmp_path / "runs" / "demo")
    assert run.relative(run.onnx("A")) == "model_a.onnx"
    assert run.relative(run.checkpoint("B")) == "model_b/best.pt"
    assert run.relative(tmp_path / "data" / "x.png") == str(tmp_path / "data" / "x.png")  # outside: absolute
    run.checkpoint("B").parent.mkdir(parents=True)
    run.checkpoint("B").write_bytes(b"x")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert run.resolve("model_b/best.pt") == run.checkpoint("B")
    # a run written before this version stored paths relative to where it was started
    assert run.resolve("runs/demo/model_b/best.pt") == run.checkpoint("B")
    assert run.resolve(str(run.checkpoint("B"))) == run.checkpoint("B")


def test_the_layout_finds_a_models_run_and_checkpoint(tmp_path):
    with RunFolder.prepare(tmp_path / "run", CONFIG) as run:
        pass
    assert RunFolder.of_model(run.onnx("A")) == run and RunFolder.of_model(run.checkpoint("C")) == run
    assert RunFolder.of_model(tmp_path / "loose.onnx") is None
    assert RunFolder.checkpoint_beside(run.onnx("A")) == run.checkpoint("A")


def test_reading_a_run_says_what_it_holds(tmp_path):
    with RunFolder.prepare(tmp_path / "run", CONFIG) as run:
        run.checkpoint("A").parent.mkdir()
        run.checkpoint("A").write_bytes(b"x")
        run.onnx("A").write_bytes(b"x")
    contents = RunFolder.open(run.root).contents()
    assert contents.config == CONFIG and not contents.finished and contents.report is None
    assert contents.checkpoints == {"A": run.checkpoint("A")} and contents.onnx == {"A": run.onnx("A")}
    write_json(run.path("report.json"), {"synthetic_data": True, "dataset": {"classes": ["benign", "malignant"]}})
    contents = RunFolder.open(run.root).contents()
    assert contents.finished and contents.synthetic and contents.classes == ["benign", "malignant"]
    with pytest.raises(RunFolderError, match="not a HistoGuard run folder"):
        RunFolder.open(tmp_path)
    run.path("config.json").write_text("{not json")
    with pytest.raises(RunFolderError, match="cannot be read"):
        RunFolder.open(run.root).contents()


@pytest.mark.parametrize(
    "setup, expected",
    [
        (lambda root: None, "new"),
        (lambda root: root.mkdir() or (root / ".x.json.abcdefgh.tmp").write_text(""), "new"),
        (lambda root: root.write_text("a file"), "file"),
        (lambda root: root.mkdir() or (root / "notes.txt").write_text("mine"), "foreign"),
        (lambda root: RunFolder.prepare(root, CONFIG).release(), "resumable"),
        (lambda root: RunFolder.prepare(root, CONFIG).release() or write_text(root / "report.json", "{}"), "finished"),
        (
            lambda root: RunFolder.prepare(root, ExperimentConfig(DataConfig(data="y"), TrainConfig())).release(),
            "other",
        ),
    ],
)
def test_the_state_of_a_folder_for_a_new_run(tmp_path, setup, expected):
    setup(tmp_path / "run")
    assert RunFolder.state(tmp_path / "run", CONFIG) == expected
