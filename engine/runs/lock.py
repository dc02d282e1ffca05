"""One writer per run folder: an advisory lock on ``<run>/.histoguard.lock`` while a process writes the run.

A second writer (another window, a second ``histoguard`` command, a cluster worker) is refused with a message
naming the holder. The operating system releases the lock when the holder's process ends, however it ends (a
SIGKILL or a power cut included), so a lock is never stale; the file itself stays and is ignored. POSIX uses
``flock`` (per open file, so two writers in one process also exclude each other), Windows ``msvcrt.locking``.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from pathlib import Path

from engine.core.errors import RunFolderError
from engine.core.fileio import write_error

LOCK_FILE = ".histoguard.lock"


class RunLock:
    """Held from ``acquire`` until ``release`` (or the process ends)."""

    def __init__(self, root: Path) -> None:
        self.path = Path(root) / LOCK_FILE
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, what: str = "a run") -> RunLock:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise write_error(self.path, exc) from exc
        if not _try_lock(fd):
            holder = _describe(_read(fd))
            os.close(fd)
            raise RunFolderError(
                f"{self.path.parent} is being written by another HistoGuard process ({holder}); wait until it has "
                f"finished, or choose another folder for {what}"
            )
        self._fd = fd
        info = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%Y-%m-%d %H:%M:%S")}
        with contextlib.suppress(OSError):  # who holds it: a courtesy for the refused writer's message
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, json.dumps(info).encode())
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
            _unlock(self._fd)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()


def holder(root: Path) -> str | None:
    """Who is writing ``root`` now ("pid 123 on host, since ..."), or None when nobody is."""
    path = Path(root) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY if sys.platform != "win32" else os.O_RDWR)
    except OSError:
        return None
    try:
        if _try_lock(fd, shared=True):
            _unlock(fd)
            return None
        return _describe(_read(fd))
    finally:
        os.close(fd)


def _read(fd: int) -> dict:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return json.loads(os.read(fd, 4096) or b"{}")
    except (OSError, ValueError):
        return {}


def _describe(info: dict) -> str:
    if not info:
        return "it did not say which"
    return f"pid {info.get('pid', '?')} on {info.get('host', '?')}, since {info.get('since', '?')}"


if sys.platform == "win32":  # pragma: no cover - Windows
    import msvcrt

    def _try_lock(fd: int, shared: bool = False) -> bool:
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int, shared: bool = False) -> bool:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
            return True
        except OSError:
            return False

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
