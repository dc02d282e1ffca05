"""A full disk or a read-only folder: a clear one-line message naming the file, and every earlier result intact.

Root ignores file permissions, so the faults are made by real mechanisms that work for root: RLIMIT_FSIZE
in a child process (a write past the limit fails with EFBIG, as on a full disk; SIGXFSZ ignored), and
OSError(EROFS / ENOSPC) injected where a read-only mount or a full disk makes the system calls fail.
"""

from __future__ import annotations

import errno
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from engine.cli import main
from engine.cli.commands import experiment_config
from engine.cli.parser import build_parser
from engine.core.errors import Cancelled, RunFolderError
from engine.core.fileio import write_json, write_text
from engine.core.progress import CancelToken
from engine.workflows.train import train_model

TRAIN = ["--arch", "small_cnn", "--image-size", "16", "--epochs", "3", "--batch-size", "8"]
TRAIN += ["--weights", "none", "--device", "cpu"]
LIMIT = 48 * 1024  # bytes: more than config.json, split.csv and log.txt, less than a checkpoint (~100 kB)


def _limit_file_size(limit: int = LIMIT):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    return apply


def _run(args: list[str], limit: int | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    preexec = _limit_file_size(limit) if limit else None
    return subprocess.run(args, env=env, capture_output=True, text=True, preexec_fn=preexec, timeout=300)


def _snapshot(folder: Path, skip: tuple[str, ...] = ("log.txt", ".histoguard.lock")) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name not in skip}


def _one_line_error(stderr: str) -> str:
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.startswith("histoguard:")]
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.fixture(scope="module")
def cancelled_run(tmp_path_factory) -> tuple[Path, list[str]]:
    """A run folder with the results of epoch 1 (last.pt, best.pt, split.csv, config.json), cancelled in epoch 2."""
    base = tmp_path_factory.mktemp("faults")
    assert main(["demo-data", str(base / "data"), "--patients-per-class", "4", "--images-per-patient", "6"]) == 0
    args = ["train", "--data", str(base / "data"), *TRAIN]
    cfg = experiment_config(build_parser().parse_args([*args, "--out", "x"]))  # what the CLI builds from args
    token = CancelToken()

    def cancel_in_epoch_two(p):
        if p.unit == "batches" and p.metrics.get("epoch") == 2:
            token.cancel()

    with pytest.raises(Cancelled):
        train_model(cfg, base / "run", on_progress=cancel_in_epoch_two, cancel=token)
    return base / "run", args


@pytest.fixture
def run_copy(cancelled_run, tmp_path) -> tuple[Path, list[str]]:
    src, args = cancelled_run
    shutil.copytree(src, tmp_path / "run")
    return tmp_path / "run", [*args, "--out", str(tmp_path / "run"), "--resume"]


def test_a_full_disk_during_training_keeps_the_earlier_checkpoints(run_copy):
    run_dir, args = run_copy
    before = _snapshot(run_dir)
    assert {"last.pt", "best.pt", "split.csv", "config.json"} <= set(before)

    done = _run([sys.executable, "-m", "engine", *args], limit=LIMIT)
    assert done.returncode == 2, done.stderr[-3000:]
    line = _one_line_error(done.stderr)
    assert line.startswith("histoguard: error: cannot write ") and f"{run_dir}{os.sep}" in line
    assert ("last.pt" in line or "best.pt" in line) and "free some disk space" in line
    assert _snapshot(run_dir) == before, "earlier results changed, or a temp file was left"

    # control: without the limit the same command finishes, and rewrites the checkpoints compared above
    assert main(args) == 0
    assert (run_dir / "last.pt").read_bytes() != before["last.pt"] and (run_dir / "train.json").is_file()


def test_a_full_disk_during_onnx_export_keeps_the_earlier_model(run_copy):
    run_dir, _ = run_copy
    export = ["export", "--model", str(run_dir / "best.pt"), "--out", str(run_dir / "model.onnx")]
    assert main(export) == 0
    before = _snapshot(run_dir)

    done = _run([sys.executable, "-m", "engine", *export], limit=16 * 1024)
    assert done.returncode == 2, done.stderr[-3000:]
    line = _one_line_error(done.stderr)
    assert "model.onnx" in line and "free some disk space" in line
    assert _snapshot(run_dir) == before


REPORT_CHILD = """
import json, resource, sys
from pathlib import Path
from engine.core.errors import RunFolderError
from engine.workflows.reports import write_run_report
from engine.runs.folder import RunFolder

run, reports = RunFolder(Path(sys.argv[1])), json.loads(Path(sys.argv[2]).read_text())
write_run_report(run, reports[0])
if sys.argv[3] == "none":
    sys.exit(0)
resource.setrlimit(resource.RLIMIT_FSIZE, (int(sys.argv[3]), resource.RLIM_INFINITY))
try:
    write_run_report(run, reports[1])
except RunFolderError as exc:
    print(exc)
    sys.exit(2)
"""


def test_a_full_disk_while_writing_the_report_keeps_the_earlier_report(tmp_path):
    from tests.e2e.test_kill_resume import _report

    reports = tmp_path / "reports.json"
    reports.write_text(json.dumps([_report(0), _report(1)]))  # report.json ~400 kB, the figures ~20 kB
    run_dir = tmp_path / "run"
    first = _run([sys.executable, "-c", REPORT_CHILD, str(run_dir), str(reports), "none"])
    assert first.returncode == 0, first.stderr[-3000:]
    complete = _snapshot(run_dir)
    shutil.rmtree(run_dir)

    done = _run([sys.executable, "-c", REPORT_CHILD, str(run_dir), str(reports), str(100 * 1024)])
    assert done.returncode == 2, done.stderr[-3000:]
    message = done.stdout.splitlines()[-1]
    assert message.startswith(f"cannot write {run_dir / 'report.json'}: File too large;")
    assert "free some disk space" in message
    # the new figures, report.md and report.html fitted, report.json did not: none of them replaced the old
    assert _snapshot(run_dir) == complete, "a file of the earlier report changed, or a temp file was left"
    # control: with room for it, the same child replaces the report
    done = _run([sys.executable, "-c", REPORT_CHILD, str(run_dir), str(reports), str(10**9)])
    assert done.returncode == 0 and _snapshot(run_dir)["report.json"] != complete["report.json"]


FAULTS = {
    # a read-only folder fails when the temp file is created
    "read-only": ("mkstemp", errno.EROFS, "choose a writable folder"),
    # a full disk may only show at fsync (delayed allocation on ext4, XFS, network file systems)
    "full": ("fsync", errno.ENOSPC, "free some disk space"),
}


def _inject(monkeypatch, where: str, code: int, folder: Path) -> None:
    """Make file writes below ``folder`` fail at ``where`` with ``code``; other writes (the cache) still work."""
    if where == "mkstemp":
        real = tempfile.mkstemp

        def mkstemp(*args, dir=None, **kwargs):
            if dir is not None and Path(dir).is_relative_to(folder):
                raise OSError(code, os.strerror(code))
            return real(*args, dir=dir, **kwargs)

        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    else:
        real_fsync = os.fsync

        def fsync(fd):
            if Path(os.readlink(f"/proc/self/fd/{fd}")).is_relative_to(folder):
                raise OSError(code, os.strerror(code))
            return real_fsync(fd)

        monkeypatch.setattr(os, "fsync", fsync)


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_fileio_faults_keep_the_old_file_and_leave_no_temp(tmp_path, monkeypatch, fault):
    where, code, advice = FAULTS[fault]
    path = tmp_path / "report.json"
    write_json(path, {"version": 1})
    _inject(monkeypatch, where, code, tmp_path)
    with pytest.raises(RunFolderError) as caught:
        write_text(path, "new")
    assert str(caught.value).startswith(f"cannot write {path}: {os.strerror(code)};") and advice in str(caught.value)
    assert json.loads(path.read_text()) == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to map a descriptor to its file")
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_the_cli_prints_one_line_and_keeps_the_results(run_copy, monkeypatch, capsys, fault):
    run_dir, args = run_copy
    where, code, advice = FAULTS[fault]
    before = _snapshot(run_dir)
    _inject(monkeypatch, where, code, run_dir)
    assert main(args) == 2
    err = capsys.readouterr().err
    line = _one_line_error(err)
    assert line.startswith(f"histoguard: error: cannot write {run_dir}{os.sep}") and advice in line
    assert os.strerror(code) in line
    assert _snapshot(run_dir) == before
