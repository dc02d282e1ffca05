"""Data loading speed: PNG decode + resize, per image in one thread (what a plain DataLoader does each
epoch), into HistoGuard's decoded-image cache (threads), and from that cache (memory-mapped).

    python -m bench.data [--reps 3]

"cold" means not yet in our cache; the PNG files themselves are in the OS file cache after the first
read, as they are for every epoch after the first in a real run.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.common import bench_main, ratio, shared_data, table, timed


def datasets() -> list[tuple[str, object, int]]:
    """(label, dataset, size): the IDC patches at 96 and the BreakHis images at 224 (demo images without them)."""
    from engine.data.discover import discover

    root = shared_data()
    found = []
    if root is not None and (root / "idc_subset").is_dir():
        found.append(("IDC patches 50x50 -> 96", discover(root / "idc_subset", positive_class="idc"), 96))
    if root is not None and (root / "breakhis_subset").is_dir():
        found.append(("BreakHis 700x460 -> 224", discover(root / "breakhis_subset"), 224))
    if not found:
        from engine.data.demo import default_demo_dir, generate_demo_dataset

        found.append(("SYNTHETIC demo -> 224", discover(generate_demo_dataset(default_demo_dir())), 224))
    return found


def run(reps: int = 3) -> list[dict]:
    import numpy as np
    from PIL import Image
    from torchvision import transforms

    from engine.data.cache import decode_dataset
    from engine.data.decode import decode_image

    rows = []
    for label, dataset, size in datasets():
        paths = [r.path for r in dataset.records]
        plain = transforms.Compose([transforms.Resize((size, size)), transforms.ToTensor()])

        def torchvision_style(paths=paths, plain=plain):
            for p in paths:
                plain(Image.open(p).convert("RGB"))

        def ours_one_thread(paths=paths, size=size):
            for p in paths:
                decode_image(p, size)

        with tempfile.TemporaryDirectory() as tmp:
            fresh = iter(range(10_000))

            def cold(dataset=dataset, size=size, tmp=tmp, fresh=fresh):
                decode_dataset(dataset, size, cache_dir=Path(tmp) / str(next(fresh)))

            def cached(dataset=dataset, size=size, tmp=tmp):
                images = decode_dataset(dataset, size, cache_dir=Path(tmp) / "warm").images
                int(np.asarray(images, dtype=np.uint8).sum(dtype=np.uint64))  # touch every pixel

            cached()  # fills the "warm" cache
            times = {
                "PIL + torchvision Resize/ToTensor, one thread": timed(torchvision_style, reps),
                "ours: decode_image, one thread": timed(ours_one_thread, reps),
                "ours: decode into the cache (threads), cold": timed(cold, reps),
                "ours: from the cache (memory-mapped)": timed(cached, reps),
            }
        base = len(paths) / next(iter(times.values()))
        for how, seconds in times.items():
            rate = len(paths) / seconds
            rows.append({"data": label, "how": how, "n": len(paths), "img_s": rate, "vs": ratio(rate, base)})
    return rows


def render(rows: list[dict]) -> str:
    lines = [[r["data"], r["n"], r["how"], r["img_s"], r["vs"]] for r in rows]
    return "### Data loading: decode + resize\n\n" + table(
        ["images", "n", "how", "images/s", "vs PIL/torchvision"], lines
    )


def main(argv: list[str] | None = None) -> int:
    return bench_main(__doc__, run, render, argv, reps=3)


if __name__ == "__main__":
    raise SystemExit(main())
