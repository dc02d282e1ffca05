"""Atomic writes (engine.core.fileio) and the run folder's handling of the temp files a killed writer leaves."""

from __future__ import annotations

import errno
import logging
import os

import pytest

from engine.core.config import DataConfig, ExperimentConfig, TrainConfig
from engine.core.errors import RunFolderError
from engine.core.fileio import atomic_open, is_temp, remove_stale_temps, write_all, write_error, write_json, write_text
from engine.runfolder import RunFolder

CONFIG = ExperimentConfig(DataConfig(data="x"), TrainConfig())


def test_a_write_replaces_the_file_and_leaves_no_temp_file(tmp_path):
    path = tmp_path / "sub" / "report.md"
    write_text(path, "old")
    write_text(path, "new")
    assert path.read_text() == "new"
    assert sorted(p.name for p in path.parent.iterdir()) == ["report.md"]


def test_an_error_during_the_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "report.json"
    write_json(path, {"v": 1})
    with pytest.raises(ZeroDivisionError), atomic_open(path) as handle:
        handle.write('{"v": 2, "half')
        raise ZeroDivisionError
    assert path.read_text() == '{\n  "v": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_write_all_replaces_no_file_when_one_of_them_fails(tmp_path):
    """The second file hits a full disk: the first, already written to its temp file, is not renamed either."""
    first, second = tmp_path / "report.md", tmp_path / "report.json"
    write_all({first: "old md", second: "old json"})
    fail_on = {second.name}

    class Full(str):
        def encode(self, *args):
            if second.name in fail_on:
                raise OSError(errno.ENOSPC, "No space left on device")
            return super().encode(*args)

    with pytest.raises(RunFolderError, match=f"cannot write {second}: No space left on device"):
        write_all({first: "new md", second: Full("new json")})
    assert (first.read_text(), second.read_text()) == ("old md", "old json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json", "report.md"]
    fail_on.clear()  # control: the same call with room to spare replaces both
    write_all({first: "new md", second: Full("new json")})
    assert (first.read_text(), second.read_text()) == ("new md", "new json")


@pytest.mark.parametrize(
    ("code", "advice"),
    [
        (errno.ENOSPC, "free some disk space"),
        (errno.EFBIG, "free some disk space"),
        (errno.EROFS, "choose a writable folder"),
        (errno.EACCES, "choose a writable folder"),
        (errno.EIO, "check that the folder exists and is writable"),
    ],
)
def test_write_errors_name_the_file_and_say_what_to_do(tmp_path, code, advice):
    message = str(write_error(tmp_path / "last.pt", OSError(code, "reason")))
    assert message.startswith(f"cannot write {tmp_path / 'last.pt'}: reason;")
    assert advice in message and "earlier files there are unchanged" in message
    assert "\n" not in message


def test_stale_temp_files_are_recognised_and_removed(tmp_path):
    temps = [
        tmp_path / ".last.pt.k2j4_x9a.tmp",  # atomic_open
        tmp_path / "model_a" / ".best.pt.abcdefgh.tmp",
        tmp_path / ".model_a.onnx.partial",  # the ONNX export before its parity check
        tmp_path / ".x.int8.onnx.ab12cd34" / "pre.onnx",  # an INT8 quantisation work folder
    ]
    kept = [tmp_path / "last.pt", tmp_path / ".hidden", tmp_path / "notes.tmp", tmp_path / "model_a" / "best.pt"]
    for path in temps + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
    removed = remove_stale_temps(tmp_path)
    assert sorted(removed) == sorted([*temps[:3], temps[3].parent])
    assert all(p.exists() for p in kept) and not any(p.exists() for p in temps)
    assert not (tmp_path / ".x.int8.onnx.ab12cd34").exists()
    assert is_temp(".report.json.a1b2c3d4.tmp") and not is_temp("report.json") and not is_temp(".config")


def test_a_folder_holding_only_temp_files_is_an_empty_run_folder(tmp_path):
    """A run killed before it wrote config.json leaves only a temp file: the folder can be used again."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / ".config.json.abcdefgh.tmp").write_text('{"half')
    assert RunFolder.check(run_dir, CONFIG) is False
    run = RunFolder.prepare(run_dir, CONFIG)
    assert sorted(p.name for p in run.root.iterdir()) == ["config.json"]
    # control: a folder with a file of its own is not taken over
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(RunFolderError, match="not a HistoGuard run folder"):
        RunFolder.prepare(other, CONFIG)


def test_resuming_removes_temp_files_and_keeps_the_results(tmp_path):
    run = RunFolder.prepare(tmp_path / "run", CONFIG)
    write_text(run.path("report.md"), "complete")
    (run.root / ".report.md.abcdefgh.tmp").write_text("compl")
    (run.root / "model_a").mkdir()
    (run.root / "model_a" / ".last.pt.abcdefgh.tmp").write_bytes(b"PK")
    RunFolder.prepare(run.root, CONFIG, resume=True)
    assert sorted(p.name for p in run.root.rglob("*")) == ["config.json", "model_a", "report.md"]
    assert run.path("report.md").read_text() == "complete"


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
    with caplog.at_level(logging.INFO, logger="engine"), run.logging_to_file():
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
    with pytest.raises(RunFolderError, match=r"log\.txt: Read-only file system; .*choose a writable folder"):
        with run.logging_to_file():
            pass


def test_write_text_keeps_a_file_name_that_is_not_utf8(tmp_path):
    """os.listdir gives surrogates for the bytes of a non-UTF-8 name; a CSV of such paths must still be written."""
    name = os.fsdecode(b"patient-\xff.png")
    out = tmp_path / "preds.csv"
    write_text(out, f"path\n{name}\n")
    assert out.read_text(encoding="utf-8") == "path\npatient-\\udcff.png\n"
