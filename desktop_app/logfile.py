"""The app's own log file (``histoguard.log`` in the user's state folder) names no image and no patient.

That file lives outside every run folder and outlives the runs, so it must not collect where the user's
images are: the paths and file names that engine messages and error texts carry are replaced by
``<path>`` and ``<image>`` when a record is written there. Counts, settings, errors and tracebacks stay
(paths of ``.py`` files are code, not data, and are kept), and so does a run folder's path. The run
folder's own ``log.txt`` and the terminal get the records unchanged.

Known limit: a file or folder name with spaces that is not part of an absolute path can keep its words
before the last space (``Jane Doe.png`` becomes ``Jane <image>``).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from engine.runs.folder import CONFIG

IMAGE_EXTENSIONS = "png|jpe?g|tiff?|bmp|gif|webp|svs|ndpi|mrxs|scn|czi|vms|vmu|bif|dcm|jp2|npy"
_STOP = "\n\r\t'\"<>|;,(){}\\[\\]"  # characters that end a path in a message
# an absolute path may hold spaces: it runs to a stop character or a ': ' (the end of "path: reason")
_ABSOLUTE = re.compile(rf"(?<![\w.\-/\\])(?:[A-Za-z]:[\\/]|\\\\|~[\\/]|/)(?:[^{_STOP}:]|:(?![\s]|$))*")
_RELATIVE = re.compile(rf"(?<![\w.\-/\\])(?:[^\s{_STOP}:/\\]+[\\/])+[^\s{_STOP}:/\\]*")
# whole words only (the look-behind): linear time even on a long line without spaces
_IMAGE = re.compile(rf"(?<![^\s{_STOP}:/\\])[^\s{_STOP}:/\\]+\.(?:{IMAGE_EXTENSIONS})\b", re.IGNORECASE)
_UNITS = frozenset({"img/s", "images/s", "it/s", "s/it", "MB/s", "GB/s", "I/O", "train/val", "val/test"})


def redact(text: str) -> str:
    """``text`` with file paths and image file names replaced (code paths and run folders kept)."""
    text = _ABSOLUTE.sub(_absolute, text)
    text = _RELATIVE.sub(_relative, text)
    return _IMAGE.sub("<image>", text)


def _absolute(m: re.Match) -> str:
    path = m.group().rstrip()
    trailing = m.group()[len(path) :]
    return (path if path.endswith(".py") or _is_run_folder(path) else "<path>") + trailing


def _relative(m: re.Match) -> str:
    token = m.group()
    keep = token.endswith(".py") or token in _UNITS or not re.search(r"[A-Za-z_]", token)
    return token if keep else "<path>"


def _is_run_folder(path: str) -> bool:
    try:
        return (Path(path).expanduser() / CONFIG).is_file()
    except (OSError, ValueError):
        return False


class PrivateFormatter(logging.Formatter):
    """A formatter whose output went through ``redact`` (tracebacks included)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
