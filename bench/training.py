"""Training speed: HistoGuard's loop vs a plain reference loop, DenseNet121 at 96 x 96 on the IDC patches.

    python -m bench.training [--images 384] [--reps 3]

Reference (what a user would otherwise write): torchvision's densenet121, a DataLoader over the PNG files
(PIL decode, Resize, flips, ToTensor, Normalize; num_workers=0, the default), AdamW, cross-entropy, fp32.
Ours: ``engine.train.loop.fit`` for one epoch on the same images, batch size and optimiser, with
HistoGuard's defaults (channels-last, precision 'auto', augmentation, checkpoints written each epoch),
fed from the decoded-image cache: "cold" decodes into an empty cache first, "cached" reuses it.
Figures are training images per second over a whole epoch, median of ``reps`` runs.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.common import bench_main, ratio, shared_data, table, verdict

SIZE, BATCH, LR = 96, 32, 1e-3


def idc_subset(n: int):
    """A class-balanced random subset of the IDC patches (or of the synthetic demo set without them)."""
    import numpy as np

    from engine.data.discover import discover

    root = shared_data()
    if root is not None and (root / "idc_subset").is_dir():
        dataset, source = discover(root / "idc_subset", positive_class="idc"), "IDC patches (50 x 50 PNG)"
    else:
        from engine.data.demo import default_demo_dir, generate_demo_dataset

        dataset, source = discover(generate_demo_dataset(default_demo_dir())), "SYNTHETIC demo images"
    labels = np.asarray(dataset.labels())
    rng = np.random.default_rng(0)
    keep = np.concatenate([rng.permutation(np.flatnonzero(labels == c))[: n // 2] for c in (0, 1)])
    return dataset.subset(sorted(keep.tolist())), source


def reference_epoch(dataset) -> float:
    """One epoch of the plain loop; returns seconds."""
    import torch
    import torch.nn.functional as F
    from PIL import Image
    from torch.utils.data import DataLoader, Dataset
    from torchvision import transforms
    from torchvision.models import densenet121

    tf = transforms.Compose(
        [
            transforms.Resize((SIZE, SIZE)),
            transforms.RandomHorizontalFlip(),
            transforms.RandomVerticalFlip(),
            transforms.ToTensor(),
            transforms.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        ]
    )

    class PngFiles(Dataset):
        def __init__(self) -> None:
            self.items = [(r.path, label) for r, label in zip(dataset.records, dataset.labels(), strict=True)]

        def __len__(self) -> int:
            return len(self.items)

        def __getitem__(self, i: int):
            path, label = self.items[i]
            return tf(Image.open(path).convert("RGB")), label

    torch.manual_seed(0)
    model = densenet121(num_classes=2)
    opt = torch.optim.AdamW(model.parameters(), lr=LR)
    loader = DataLoader(PngFiles(), batch_size=BATCH, shuffle=True)
    model.train()
    t0 = time.perf_counter()
    for x, y in loader:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def our_epoch(dataset, cache_dir: Path, out_dir: Path) -> float:
    """Decode (or load from ``cache_dir``) and train one epoch with ``fit``; returns seconds for both."""
    import torch

    from engine.core.config import TrainConfig
    from engine.data.arrays import ArraySet
    from engine.data.cache import decode_dataset
    from engine.models.checkpoint import make_metadata
    from engine.models.registry import create_model
    from engine.train.loop import fit

    cfg = TrainConfig(arch="densenet121", image_size=SIZE, epochs=1, batch_size=BATCH, lr=LR, weights="none")
    torch.manual_seed(0)
    model = create_model("densenet121")
    meta = make_metadata("densenet121", dataset.classes, SIZE, {"method": "clean"})
    t0 = time.perf_counter()
    decoded = decode_dataset(dataset, SIZE, cache_dir=cache_dir)
    train = ArraySet(decoded.images, decoded.labels)
    fit(model, train, None, cfg, out_dir=out_dir, name="bench", metadata=meta, resume=False)
    return time.perf_counter() - t0


def run(images: int = 384, reps: int = 3) -> dict:
    import statistics

    import torch

    from engine.models.device import autocast_dtype

    dataset, source = idc_subset(images)
    n = len(dataset.records)
    times: dict[str, list[float]] = {"reference": [], "ours, cold (decode + train)": [], "ours, cached": []}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(reps + 1):  # the first round warms up and is not counted
            cache = Path(tmp) / f"cache{rep}"
            runs = {
                "reference": lambda: reference_epoch(dataset),
                "ours, cold (decode + train)": lambda c=cache: our_epoch(dataset, c, Path(tmp) / "run"),
                "ours, cached": lambda c=cache: our_epoch(dataset, c, Path(tmp) / "run"),
            }
            for name, go in runs.items():
                seconds = go()
                if rep:
                    times[name].append(seconds)
    precision = autocast_dtype(torch.device("cpu"))
    return {
        "img_s": {k: n / statistics.median(v) for k, v in times.items()},
        "n": n,
        "source": source,
        "precision": "fp32" if precision is None else str(precision).replace("torch.", ""),
    }


def render(result: dict) -> str:
    ref = result["img_s"]["reference"]
    rows = [[name, rate, ratio(rate, ref)] for name, rate in result["img_s"].items()]
    cached = result["img_s"]["ours, cached"]
    return (
        f"### Training: DenseNet121 from scratch at {SIZE} x {SIZE}, batch {BATCH}, AdamW, {result['n']} "
        f"{result['source']}, one epoch\n\n"
        + table(["loop", "training images/s", "vs reference"], rows)
        + f"\n\nOur loop ran in {result['precision']} (precision 'auto' on this CPU). "
        f"Ours with the cache vs the reference: {verdict(cached / ref, 2.0)}.\n"
    )


def main(argv: list[str] | None = None) -> int:
    return bench_main(__doc__, run, render, argv, images=384, reps=3)


if __name__ == "__main__":
    raise SystemExit(main())
