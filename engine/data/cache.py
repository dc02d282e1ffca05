"""Decode every image once, resized, into one uint8 array cached on disk (memory-mapped when reused).

The cache key covers each file's path, size and modification time, the image size and the decoder
version, so a changed file or setting makes a new cache. Files that fail to decode are reported by
name and left out; they never stop a run.

Privacy: the cache (``~/.cache/histoguard/decoded`` or ``$XDG_CACHE_HOME/histoguard/decoded``) holds decoded
pixels of the user's images outside the run folder, but nothing that names them: files are named by a
one-way SHA-256 digest of the key, and the reasons of failed files are stored with the file's path cut
out (it is put back from the dataset when the cache is read). ``HISTOGUARD_CACHE_DIR=DIR`` moves it (e.g.
next to the runs), ``HISTOGUARD_CACHE_DIR=off`` turns it off (every run decodes again); deleting the folder
is always safe.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.core.errors import DecodeError
from engine.core.fileio import atomic_open, write_json
from engine.core.progress import CancelToken, ProgressCallback, check_cancel, report
from engine.data.decode import decode_image
from engine.data.records import Dataset, Skipped

log = logging.getLogger(__name__)
DECODER_VERSION = 2  # 2: decode.py refuses formats other than PNG/JPEG/TIFF/BMP/GIF and images over 89.5 Mpx
CACHE_OFF = "off"  # HISTOGUARD_CACHE_DIR=off: decode in memory only, write nothing
_PATH, _NAME = "\x00path\x00", "\x00name\x00"  # stand for the file in stored reasons


@dataclass
class DecodedImages:
    """Decoded pixels of ``dataset.records`` in order (rows of records that failed are removed)."""

    dataset: Dataset
    images: np.ndarray  # (N, S, S, 3) uint8, maybe a read-only memmap
    labels: np.ndarray  # (N,) int64, index into dataset.classes


def default_cache_dir() -> Path | None:
    """``HISTOGUARD_CACHE_DIR`` (``None`` when it is ``off``), else the user's cache folder."""
    env = os.environ.get("HISTOGUARD_CACHE_DIR")
    if env and env.strip().lower() == CACHE_OFF:
        return None
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "histoguard" / "decoded"


def cache_key(dataset: Dataset, size: int) -> str:
    h = hashlib.sha256(f"v{DECODER_VERSION}:{size}".encode())
    for r in dataset.records:
        try:
            st = r.path.stat()
            stamp = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:  # gone or unreadable: decoding reports it as skipped
            stamp = "missing"
        h.update(f"\n{r.path.resolve()}:{stamp}".encode())
    return h.hexdigest()[:32]


def decode_dataset(
    dataset: Dataset,
    size: int,
    *,
    cache_dir: str | Path | None = None,
    workers: int | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> DecodedImages:
    """Decode (or load from the cache) every image of ``dataset`` at ``size`` x ``size``."""
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if cache_dir is None:
        return _result(dataset, *_decode_all(dataset, size, workers, on_progress, cancel))
    key = cache_key(dataset, size)
    arr_path, meta_path = cache_dir / f"{key}.npy", cache_dir / f"{key}.json"
    if arr_path.exists() and meta_path.exists():
        cached = _load_cached(dataset, arr_path, meta_path)
        if cached is not None:
            log.info("decoded images loaded from cache %s", arr_path)
            return cached
    images, failed = _decode_all(dataset, size, workers, on_progress, cancel)
    _save_cache(arr_path, meta_path, images, {i: _anonymous(r, dataset.records[i].path) for i, r in failed.items()})
    return _result(dataset, images, failed)


def _decode_all(dataset, size, workers, on_progress, cancel) -> tuple[np.ndarray, dict[int, str]]:
    n = len(dataset.records)
    images = np.zeros((n, size, size, 3), dtype=np.uint8)
    failed: dict[int, str] = {}

    def work(chunk: range) -> int:
        for i in chunk:
            check_cancel(cancel, "decoding images")
            try:
                images[i] = decode_image(dataset.records[i].path, size)
            except DecodeError as exc:
                failed[i] = str(exc)
                log.warning("skipped: %s", exc)
        return len(chunk)

    workers = workers or min(8, os.cpu_count() or 1)
    # chunks, not one task per image: for small patches (IDC 50 x 50) the per-task overhead of the pool
    # made threaded decoding slower than one thread (bench/data.py)
    step = max(1, min(64, n // (workers * 4) or 1))
    chunks = [range(i, min(i + step, n)) for i in range(0, n, step)]
    done = 0
    with ThreadPoolExecutor(workers) as pool:
        for count in pool.map(work, chunks):
            done += count
            report(on_progress, "decode", done, n, unit="images")
    return images, failed


def _save_cache(arr_path: Path, meta_path: Path, images: np.ndarray, failed: dict[int, str]) -> None:
    try:
        with atomic_open(arr_path, "wb") as handle:
            np.save(handle, images)
        write_json(meta_path, {"failed": {str(k): v for k, v in failed.items()}, "shape": list(images.shape)})
    except Exception as exc:  # a cache that cannot be written only costs speed
        log.warning("could not write the decoded-image cache in %s (%s); continuing without it", arr_path.parent, exc)


def _load_cached(dataset: Dataset, arr_path: Path, meta_path: Path) -> DecodedImages | None:
    try:
        meta = json.loads(meta_path.read_text())
        images = np.load(arr_path, mmap_mode="r")
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable cache %s: %s", arr_path, exc)
        return None
    if images.shape[0] != len(dataset.records):
        return None
    failed = {int(k): v for k, v in meta.get("failed", {}).items()}
    return _result(dataset, images, {i: _named(r, dataset.records[i].path) for i, r in failed.items()})


def _anonymous(reason: str, path: Path) -> str:
    """``reason`` without the file's path or name, so the cache names no patient image."""
    return reason.replace(str(path), _PATH).replace(path.name, _NAME)


def _named(reason: str, path: Path) -> str:
    return reason.replace(_PATH, str(path)).replace(_NAME, path.name)


def _result(dataset: Dataset, images: np.ndarray, failed: dict[int, str]) -> DecodedImages:
    if failed:
        keep = [i for i in range(len(dataset.records)) if i not in failed]
        skipped = [Skipped(dataset.records[i].path, reason) for i, reason in sorted(failed.items())]
        dataset = dataset.subset(keep)
        dataset.skipped.extend(skipped)
        images = images[keep]
    labels = np.asarray(dataset.labels(), dtype=np.int64)
    return DecodedImages(dataset, images, labels)
