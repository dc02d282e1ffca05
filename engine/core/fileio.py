"""Atomic file writes: a temp file in the same folder, fsync, then ``os.replace``.

A crash, a SIGKILL or a full disk leaves either the old file or the new one, never half of one. A process
killed between creating the temp file and the rename leaves a hidden ``.<name>.<random>.tmp`` beside the
target: ``remove_stale_temps`` deletes those when a run folder is opened again, and every reader skips them
(hidden names, ``.tmp`` suffix).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from engine.core.errors import RunFolderError

log = logging.getLogger(__name__)

# atomic_open's ".<name>.<random>.tmp", the demo generator's ".<name>.tmp", ONNX export's ".<name>.partial"
_TEMP_FILE = re.compile(r"^\..+\.(tmp|partial)$")
# INT8 quantisation's work folder ".<name>.onnx.<random>" (tempfile.TemporaryDirectory beside the output)
_TEMP_DIR = re.compile(r"^\..+\.onnx\.[a-z0-9_]{8}$")
_FULL = {errno.ENOSPC, errno.EFBIG, getattr(errno, "EDQUOT", errno.ENOSPC)}
_READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}


def write_error(path: str | os.PathLike, exc: OSError) -> RunFolderError:
    """The user-facing error for a failed write of ``path``: what happened and what to do."""
    reason = exc.strerror or str(exc)
    if exc.errno in _FULL:
        advice = "the disk (or your quota) is full: free some disk space or choose a folder on another disk"
    elif exc.errno in _READ_ONLY:
        advice = "the folder is read-only or not yours: choose a writable folder"
    else:
        advice = "check that the folder exists and is writable"
    return RunFolderError(f"cannot write {path}: {reason}; {advice} (earlier files there are unchanged)")


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temp file beside ``path``; on success it replaces ``path`` atomically.

    Any failure (an exception in the ``with`` body included) removes the temp file and leaves ``path`` as it
    was; an OSError becomes a ``RunFolderError`` naming ``path`` (see ``write_error``).
    """
    path = Path(path)
    try:
        fd, tmp = _mkstemp(path)
    except OSError as exc:
        raise write_error(path, exc) from exc
    try:
        with os.fdopen(fd, mode, **kwargs) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        _remove_quietly(tmp)
        raise write_error(path, exc) from exc
    except BaseException:
        _remove_quietly(tmp)
        raise
    _fsync_dir(path.parent)


def write_all(files: dict[Path, bytes | str]) -> None:
    """Write several files (str as UTF-8) so that an error part-way, such as a full disk, replaces none of them.

    Every file goes to its temp file first; the renames, which need no disk space, follow in ``files``' order
    once all are written. A kill during the renames can still leave some files new and some old (each
    complete), so put the file that marks the set as finished last.
    """
    staged: list[tuple[str, Path]] = []
    path = None
    try:
        for path, data in files.items():
            path = Path(path)
            fd, tmp = _mkstemp(path)
            staged.append((tmp, path))
            with os.fdopen(fd, "wb") as handle:
                handle.write(data.encode("utf-8") if isinstance(data, str) else data)
                handle.flush()
                os.fsync(handle.fileno())
        for tmp, path in staged:
            os.replace(tmp, path)
    except OSError as exc:
        for tmp, _ in staged:
            _remove_quietly(tmp)
        raise write_error(path, exc) from exc
    except BaseException:
        for tmp, _ in staged:
            _remove_quietly(tmp)
        raise
    for folder in {p.parent for _, p in staged}:
        _fsync_dir(folder)


def _mkstemp(path: Path) -> tuple[int, str]:
    """A new temp file beside ``path`` (same file system, so the rename is atomic), with the umask's mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes owner-only files; honour the user's umask instead
    except OSError:
        os.close(fd)
        _remove_quietly(tmp)
        raise
    return fd, tmp


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); best effort: Windows cannot open a folder, some file systems
    refuse to fsync one, and the new file is complete either way."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once at import: os.umask() is process-wide and not thread-safe


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def write_text(path: str | os.PathLike, text: str) -> None:
    # a file name that is not UTF-8 (Python keeps its bytes as surrogates) is written as \udcxx escapes
    # instead of failing the whole CSV or report
    with atomic_open(path, "w", encoding="utf-8", errors="backslashreplace", newline="") as handle:
        handle.write(text)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n")


def is_temp(name: str) -> bool:
    """True for the name of a temp file or folder that an interrupted atomic write leaves behind."""
    return bool(_TEMP_FILE.match(name) or _TEMP_DIR.match(name))


def remove_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Delete the temp files (and INT8 work folders) that killed writers left below ``folder``; return them.

    Call it only where no other process is writing (a run folder being opened for a new or resumed run):
    a live writer's temp file looks the same.
    """
    removed: list[Path] = []
    for parent, dirs, files in os.walk(folder):
        for name in [d for d in dirs if _TEMP_DIR.match(d)]:
            dirs.remove(name)
            shutil.rmtree(Path(parent) / name, ignore_errors=True)
            removed.append(Path(parent) / name)
        for name in (f for f in files if _TEMP_FILE.match(f)):
            try:
                (Path(parent) / name).unlink()
                removed.append(Path(parent) / name)
            except FileNotFoundError:
                pass
            except OSError as exc:  # harmless: readers skip temp files
                log.warning("could not remove the temp file %s: %s", Path(parent) / name, exc.strerror)
    if removed:
        log.info("removed %d temp file(s) left by an interrupted write in %s", len(removed), folder)
    return removed


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
