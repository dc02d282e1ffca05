"""Stain differences between labs on the real IDC patches: Model A (clean) trained with and without stain
normalisation (and with HED jitter), each evaluated on the test patches and on stain-shifted copies of them.

    python -m bench.stain [--epochs 6] [--out runs/stain] [--models none,hed,macenko,reinhard] [--quick]

The data and model of ``bench/ablation.py`` (the IDC patches of ``../shared/data`` or ``$HISTOGUARD_SHARED_DATA``,
patient-level split 0.7/0.15/0.15, DenseNet121 from scratch at 48 px), clean training for ``--epochs`` epochs. Each
model's training and validation images are prepared by the project's pipeline (``engine.data.prepare.prepare_data``
with ``stain_norm``: the reference is fitted on the training split). Test conditions are made from the *raw* test
patches, as another lab would deliver them, then go through each model's own preprocessing (its recorded stain
reference, ``engine.data.stain_norm.for_model``), as ``histoguard predict`` does:

- clean; a lab shift in HED space (every image alike: haematoxylin x (1 + s), eosin x (1 - s), and the reverse) at
  s = 0.3; in-lab variation (``engine.attacks.natural.stain_shift``, a random per-image shift, severity 0.2);
- a different lab's colour: the test patches re-stained (Reinhard and Macenko) to the reference fitted on the BreakHis
  images of ``../shared/data/breakhis_subset`` (another lab, another scanner).

Balanced accuracy with 95% patient-level bootstrap intervals (``engine.core.intervals``). Writes ``stain.md`` and
``stain.json`` to ``--out``. ``--quick``: a tiny network on a few images, a smoke test of the script only.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from bench.common import header, setup, shared_data
from engine.core.config import DataConfig

MODELS = {
    "none": ("no stain normalisation", {}),
    "hed": ("HED jitter in training (scale 0.2, shift 0.05)", {"hed_scale": 0.2, "hed_shift": 0.05}),
    "macenko": ("Macenko normalisation", {"stain_norm": "macenko"}),
    "reinhard": ("Reinhard normalisation", {"stain_norm": "reinhard"}),
}
LAB_SHIFT = 0.3
IN_LAB = 0.2
log = logging.getLogger("bench.stain")


def _hed(images: np.ndarray, scale: tuple[float, float, float]) -> np.ndarray:
    import torch

    from engine.attacks.stain import scale_and_shift
    from engine.models.tensors import to_tensor, to_uint8

    x = to_tensor(images, torch.device("cpu"))
    n = len(x)
    return to_uint8(scale_and_shift(x, torch.tensor([scale] * n), torch.zeros(n, 3)))


def _in_lab(images: np.ndarray) -> np.ndarray:
    import torch

    from engine.attacks.natural import stain_shift
    from engine.models.tensors import to_tensor, to_uint8

    gen = torch.Generator().manual_seed(0)
    return to_uint8(stain_shift(to_tensor(images, torch.device("cpu")), severity=IN_LAB, generator=gen))


def other_lab_references(size: int) -> dict:
    """Reinhard and Macenko references of the BreakHis images (another lab), decoded at ``size``."""
    from engine.data.decode import decode_image
    from engine.data.stain_norm import fit_reference

    root = shared_data() / "breakhis_subset"
    images = np.stack([decode_image(p, size) for p in sorted(root.rglob("*.png"))])
    what = f"{len(images)} BreakHis images"
    return {m: fit_reference(m, images, fitted_on=what) for m in ("reinhard", "macenko")}


def conditions(raw: np.ndarray, size: int) -> dict[str, tuple[str, np.ndarray]]:
    from engine.data.stain_norm import normalise

    s = LAB_SHIFT
    other = other_lab_references(size)
    return {
        "clean": ("the test patches as they are", raw),
        "hed_h+": (f"HED lab shift: haematoxylin x{1 + s:g}, eosin x{1 - s:g}", _hed(raw, (1 + s, 1 - s, 1.0))),
        "hed_e+": (f"HED lab shift: haematoxylin x{1 - s:g}, eosin x{1 + s:g}", _hed(raw, (1 - s, 1 + s, 1.0))),
        "in_lab": (f"in-lab variation: random HED shift per image, severity {IN_LAB:g}", _in_lab(raw)),
        "reinhard_lab": ("Reinhard transfer to BreakHis colours", normalise(raw, other["reinhard"])),
        "macenko_lab": ("Macenko transfer to BreakHis stains", normalise(raw, other["macenko"])),
    }


def train_and_evaluate(name: str, changes: dict, base, data_cfg: DataConfig, conds: dict, out: Path, quick: bool):
    import torch

    from engine.core.intervals import Bootstrap, metrics_with_intervals
    from engine.data.arrays import ArraySet
    from engine.data.prepare import prepare_data
    from engine.data.split import split_hash
    from engine.data.stain_norm import for_model
    from engine.models.inference import logits_of
    from engine.train.study import train_new_model

    cfg = replace(base, **changes)
    t0 = time.perf_counter()
    data = prepare_data(data_cfg, cfg.image_size, stain_norm=cfg.stain_norm)
    train, val, test = (data.arrays(s) for s in ("train", "val", "test"))
    if quick:
        train, val = _subset(train, 96), _subset(val, 48)
    t1 = time.perf_counter()
    model, result, meta = train_new_model(
        cfg, train, val, classes=data.dataset.classes, how={"method": "clean"},
        split_hash=split_hash(data.dataset, data.split), out_dir=out / name, name=f"stain bench {name}",
        stain=data.stain,
    )  # fmt: skip
    trained = time.perf_counter() - t1
    cells = {}
    bootstrap = Bootstrap(20 if quick else 1000)
    for key, (_, images) in conds.items():
        prepared = ArraySet(for_model(meta, images), test.labels, test.patients)
        logits = logits_of(model, prepared, torch.device("cpu"))
        p = np.exp(logits - logits.max(1, keepdims=True))
        p = p[:, meta.positive_index] / p.sum(1)
        m = metrics_with_intervals(
            test.labels, p, groups=test.patients, bootstrap=bootstrap, keys=("balanced_accuracy",)
        )
        cells[key] = {"balanced_accuracy": m["balanced_accuracy"], "ci": m["ci"]["balanced_accuracy"]}
    res = {"model": name, "what": MODELS[name][0], "stain": meta.stain_norm, "cells": cells,
           "prepare_seconds": round(t1 - t0, 1), "train_seconds": round(trained, 1),
           "best_epoch": result.best_epoch, "epochs_run": result.epochs_run}  # fmt: skip
    log.warning("%s: %s", name, {k: round(v["balanced_accuracy"], 3) for k, v in cells.items()})
    return res


def _subset(a, n: int):
    from engine.data.arrays import ArraySet

    idx = np.sort(np.random.default_rng(0).permutation(len(a))[:n])
    return ArraySet(a.images[idx], a.labels[idx], None if a.patients is None else a.patients[idx])


def _num(cell: dict) -> str:
    ci = cell["ci"]
    return f"{cell['balanced_accuracy']:.3f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def render(report: dict) -> str:
    s, d, conds = report["settings"], report["data"], report["conditions"]
    heads = ["model", *conds, "worst shifted", "train time"]
    lines = [
        "## Stain differences between labs: IDC patches" + (" (--quick: a smoke test only)" if s["quick"] else ""),
        "",
        f"- data: {d['train']} train, {d['val']} val, {d['test']} test patches ({d['test_patients']} test patients), "
        f"patient-level split; {s['arch']} from scratch at {s['image_size']} px, {s['epochs']} epochs, batch "
        f"{s['batch_size']}, clean training (Model A); CPU, one thread",
        "- balanced accuracy on the test patches, 95% patient-level bootstrap intervals "
        f"({s['bootstrap']} resamples); each condition is made from the raw test patches and then goes through the "
        "model's own preprocessing (its recorded stain reference)",
        *(f"- `{k}`: {v}" for k, v in conds.items()),
        "",
        "| " + " | ".join(heads) + " |",
        "|" + " --- |" * len(heads),
    ]
    for r in report["results"].values():
        shifted = [r["cells"][k]["balanced_accuracy"] for k in conds if k != "clean"]
        cells = [f"{r['model']} ({r['what']})", *(_num(r["cells"][k]) for k in conds), f"{min(shifted):.3f}",
                 f"{r['train_seconds']:.0f} s"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    setup()
    import torch

    torch.set_num_threads(a.threads)
    from bench.robustness import IDC_TRAIN

    shared = shared_data()
    path = shared / "idc_subset" / "MANIFEST.csv" if shared else None
    if path is None or not path.exists():
        sys.stderr.write(f"IDC patches not found ({path}); set HISTOGUARD_SHARED_DATA\n")
        return 2
    base = replace(IDC_TRAIN, epochs=a.epochs, patience=a.epochs)
    if a.quick:
        base = replace(base, arch="small_cnn", image_size=32, epochs=1)
    data_cfg = DataConfig(data=str(path), positive_class="idc")
    from engine.data.prepare import prepare_data

    raw = prepare_data(data_cfg, base.image_size)
    test = raw.arrays("test")
    conds = conditions(test.images, base.image_size)
    results = {}
    for name in a.models:
        results[name] = train_and_evaluate(name, MODELS[name][1], base, data_cfg, conds, a.out, a.quick)
    report = {
        "settings": {**asdict(base), "bootstrap": 20 if a.quick else 1000, "quick": a.quick},
        "data": {**{k: len(raw.arrays(k)) for k in ("train", "val", "test")},
                 "test_patients": len(set(test.patients.tolist())), "path": str(path)},
        "conditions": {k: v[0] for k, v in conds.items()},
        "results": results,
    }  # fmt: skip
    text = render(report)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "stain.json").write_text(json.dumps(report, indent=1, default=str))
    (a.out / "stain.md").write_text(text)
    sys.stdout.write(header("HistoGuard stain benchmark").splitlines()[2] + "\n\n" + text)
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.stain", description=__doc__.splitlines()[0])
    p.add_argument("--models", type=lambda v: [m for m in v.split(",") if m in MODELS], default=list(MODELS))
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--out", type=Path, default=Path("runs/stain"))
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the cores are shared)")
    p.add_argument("--quick", action="store_true", help="tiny network, 1 epoch, a few images: a smoke test")
    return p


if __name__ == "__main__":
    sys.exit(main())
