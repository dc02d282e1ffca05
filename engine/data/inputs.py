"""Image inputs given on a command line or dropped on a window: files and folders -> image paths.

Whatever text arrives (an empty string, a name too long for the file system, "~user" of an unknown user,
bytes that are not UTF-8) ends as a list of paths or a DataError naming it, never another exception
(tests/engine/test_fuzz_inputs.py).
"""

from __future__ import annotations

from pathlib import Path

from engine.core.errors import DataError
from engine.data.decode import shown_path
from engine.data.discover import IMAGE_SUFFIXES

ADVICE = "give image files or folders of images"


def collect_images(inputs: list[str | Path]) -> list[Path]:
    """Expand folders (recursively) to their image files; keep files as given, in order, without duplicates."""
    out: list[Path] = []
    for item in inputs:
        out += _expand(_as_path(item))
    seen: set[Path] = set()
    unique = [p for p in out if not (p in seen or seen.add(p))]
    if not unique:
        given = ", ".join(shown_path(i) for i in inputs)
        raise DataError(f"no images found in {given} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    return unique


def _as_path(item: str | Path) -> Path:
    if not str(item).strip():  # Path("") is the current folder: never search it by accident
        raise DataError(f"an empty path was given; {ADVICE}")
    try:
        return Path(item).expanduser()
    except RuntimeError:  # "~someone" whose home folder is unknown: take the name literally
        return Path(item)


def _expand(path: Path) -> list[Path]:
    try:
        if path.is_dir():
            return sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if path.is_file():
            return [path]
    except OSError as exc:  # a name too long, a folder that cannot be listed
        raise DataError(f"{shown_path(path)} cannot be read ({exc.strerror or exc}); {ADVICE}") from exc
    raise DataError(f"{shown_path(path)} does not exist; {ADVICE}")
