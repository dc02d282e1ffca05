"""Image inputs given on a command line or dropped on a window: files and folders -> image paths."""

from __future__ import annotations

from pathlib import Path

from engine.data.discover import IMAGE_SUFFIXES
from engine.errors import DataError


def collect_images(inputs: list[str | Path]) -> list[Path]:
    """Expand folders (recursively) to their image files; keep files as given, in order, without duplicates."""
    out: list[Path] = []
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            out += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            out.append(path)
        else:
            raise DataError(f"{path} does not exist; give image files or folders of images")
    seen: set[Path] = set()
    unique = [p for p in out if not (p in seen or seen.add(p))]
    if not unique:
        raise DataError(
            f"no images found in {', '.join(map(str, inputs))} (looked for {', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    return unique
