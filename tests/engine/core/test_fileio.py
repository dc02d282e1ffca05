"""Atomic writes (engine.core.fileio) and the temp files a killed writer leaves."""

from __future__ import annotations

import errno
import os

import pytest

from engine.core.errors import RunFolderError
from engine.core.fileio import atomic_open, is_temp, remove_stale_temps, write_all, write_error, write_json, write_text


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


def test_write_text_keeps_a_file_name_that_is_not_utf8(tmp_path):
    """os.listdir gives surrogates for the bytes of a non-UTF-8 name; a CSV of such paths must still be written."""
    name = os.fsdecode(b"patient-\xff.png")
    out = tmp_path / "preds.csv"
    write_text(out, f"path\n{name}\n")
    assert out.read_text(encoding="utf-8") == "path\npatient-\\udcff.png\n"
