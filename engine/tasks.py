"""Single-model tasks behind the CLI commands train, attack, evaluate and export."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from engine.attacks import make_attack
from engine.core.config import ExperimentConfig
from engine.core.errors import ConfigError, DecodeError
from engine.core.fileio import atomic_open, write_json
from engine.core.progress import CancelToken, ProgressCallback, check_cancel, report
from engine.data.arrays import ArraySet
from engine.data.decode import load_rgb, resize_center
from engine.data.inputs import collect_images
from engine.data.prepare import prepare_data
from engine.data.split import save_split, split_hash
from engine.evaluate.conditions import Evaluator
from engine.export.onnx_export import export_verified, parity_batches
from engine.models.checkpoint import load_checkpoint
from engine.models.device import resolve_device
from engine.models.tensors import to_tensor, to_uint8
from engine.runfolder import RunFolder
from engine.train.distributed import barrier, distributed_session, main_first
from engine.train.study import adversarial_how, merged_fgsm_sets, train_new_model

log = logging.getLogger(__name__)


def train_model(
    cfg: ExperimentConfig,
    out: str | Path,
    *,
    adversarial_from: str | Path | None = None,
    force: bool = False,
    resume: bool = False,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> dict:
    """Train one model into ``out`` (best.pt, last.pt, split.csv, train.json); with ``adversarial_from``,
    the study's Model B: FGSM images made on that checkpoint merged with the originals.

    Under torchrun every process runs this (DDP, see ``engine.train.distributed``): rank 0 prepares the
    data and the run folder first and alone writes into it; the others then read its cache and split.
    """
    with distributed_session(cfg.train.device) as ctx:
        if not ctx.is_main:
            on_progress = None  # one progress display: rank 0's
        resuming = RunFolder.check(out, cfg, force=force, resume=resume)
        barrier(ctx)  # every rank has looked at the folder before rank 0 changes it
        with main_first(ctx):
            data = prepare_data(
                cfg.data,
                cfg.train.image_size,
                split_file=RunFolder.saved_split(out, resuming),
                on_progress=on_progress,
                cancel=cancel,
            )
            if ctx.is_main:
                run = RunFolder.prepare(out, cfg, force=force, resume=resume)
            else:
                run = RunFolder(Path(out).expanduser())
        with run.logging_to_file() if ctx.is_main else contextlib.nullcontext():
            return _train_into(run, data, cfg, adversarial_from, ctx.is_main, on_progress, cancel)


def _train_into(run: RunFolder, data, cfg: ExperimentConfig, adversarial_from, is_main: bool, on_progress, cancel):
    if is_main and not run.path("split.csv").exists():
        save_split(run.path("split.csv"), data.dataset, data.split)
    train, val = data.arrays("train"), data.arrays("val")
    how = adversarial_how(cfg.train)
    if adversarial_from:
        if how["method"] != "clean":
            raise ConfigError("choose one: --adversarial-from (the study's merged set) or --adversarial")
        source, _ = load_checkpoint(adversarial_from)
        source.to(resolve_device(cfg.train.device))
        train, val, how = merged_fgsm_sets(
            source,
            train,
            val,
            eps=cfg.eps,
            source_name=str(adversarial_from),
            batch_size=cfg.eval_batch_size,
            on_progress=on_progress,
            cancel=cancel,
        )
    _, result, _ = train_new_model(
        cfg.train,
        train,
        val,
        classes=data.dataset.classes,
        how=how,
        split_hash=split_hash(data.dataset, data.split),
        out_dir=run.root,
        name="model",
        synthetic_data=data.dataset.synthetic,
        on_progress=on_progress,
        cancel=cancel,
    )
    summary = result.summary(how)
    if is_main:
        write_json(run.path("train.json"), summary)
    return summary


def evaluate_checkpoint(
    model_path: str | Path,
    cfg: ExperimentConfig,
    *,
    split: str = "test",
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> dict:
    """Clean and white-box FGSM metrics of one checkpoint on a dataset split (``all`` for every image)."""
    model, meta = load_checkpoint(model_path)
    device = resolve_device(cfg.train.device)
    model.to(device)
    data = prepare_data(cfg.data, meta["image_size"], on_progress=on_progress, cancel=cancel)
    same_split = meta.get("split_hash") == split_hash(data.dataset, data.split)
    if split != "all" and meta.get("split_hash") and not same_split:
        log.warning(
            "this split differs from the one %s was trained with, so its '%s' images may include training "
            "patients; pass --split-file <run>/split.csv",
            Path(model_path).name,
            split,
        )
    test = _all_arrays(data) if split == "all" else data.arrays(split)
    ev = Evaluator({"M": model}, test, device, cfg.eval_batch_size, on_progress, cancel)
    evaluations = [ev.entry("M", s, cfg.eps, level) for level in ("image", "patient") for s in (None, "M")]
    sweep = []
    for eps in cfg.sweep_eps:
        e = ev.entry("M", "M" if eps > 0 else None, eps, "image")
        sweep.append(
            {
                "model": "M",
                "attack_source": "M",
                "eps": eps,
                "accuracy": e["accuracy"],
                "balanced_accuracy": e["balanced_accuracy"],
                "missed_cancer_rate": e["missed_cancer_rate"],
            }
        )
    return {
        "model": str(model_path),
        "metadata": meta,
        "split": split,
        "split_matches_training": same_split,
        "eps": cfg.eps,
        "evaluations": evaluations,
        "sweep": sweep,
        "dataset": data.dataset.summary(),
    }


def _all_arrays(data) -> ArraySet:
    patients = np.array([r.patient_id or f"image-{i}" for i, r in enumerate(data.dataset.records)], dtype=object)
    return ArraySet(np.asarray(data.decoded.images), data.decoded.labels, patients)


def export_checkpoint(model_path: str | Path, out: str | Path, eps: float = 4 / 255) -> dict:
    """Export a checkpoint to ONNX, with parity checked on random clean and FGSM images."""
    model, meta = load_checkpoint(model_path)
    size = meta["image_size"]
    x = torch.rand(8, 3, size, size, generator=torch.Generator().manual_seed(0))
    y = model(x).argmax(1).detach()
    return export_verified(model, out, meta, size, parity_batches(model, x, y, eps))


def attack_files(
    model_path: str | Path,
    inputs: list,
    out_dir: str | Path,
    *,
    method: str = "fgsm",
    eps: float,
    steps: int = 10,
    alpha: float | None = None,
    restarts: int = 1,
    target: str | None = None,
    seed: int = 0,
    device: str = "auto",
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> list[dict]:
    """Write an adversarial PNG of every input image (at the model's input size) into ``out_dir``.

    Untargeted, the label attacked is the model's own prediction on the clean image (push it away); with
    ``target`` (a class name) the attack pulls every image towards that class.
    """
    model, meta = load_checkpoint(model_path)
    dev = resolve_device(device)
    model.to(dev)
    size, classes = meta["image_size"], meta["classes"]
    if target is not None and target not in classes:
        raise ConfigError(f"target class {target!r} is not one of the model's classes {classes}")
    attack = make_attack(
        method, eps, steps=steps, alpha=alpha, restarts=restarts, seed=seed, targeted=target is not None
    )
    target_idx = None if target is None else classes.index(target)
    out_dir = Path(out_dir)
    paths, rows = collect_images(inputs), []
    for i, path in enumerate(paths, start=1):
        check_cancel(cancel, "attack")
        rows.append(_attack_one(model, path, out_dir, size, classes, dev, method, attack, target_idx))
        report(on_progress, f"attack ({method})", i, len(paths), unit="images")
    return rows


def _attack_one(model, path: Path, out_dir: Path, size: int, classes, dev, method: str, attack, target_idx) -> dict:
    try:
        clean = np.asarray(resize_center(load_rgb(path), size), dtype=np.uint8)[None]
    except DecodeError as exc:
        log.warning("%s", exc)
        return {"path": str(path), "error": str(exc)}
    x = to_tensor(clean, dev)
    with torch.no_grad():
        p_clean = torch.softmax(model(x), 1)[0]
    y = p_clean.argmax()[None] if target_idx is None else torch.tensor([target_idx], device=dev)
    adv = attack(model, x, y)
    with torch.no_grad():
        p_adv = torch.softmax(model(adv), 1)[0]
    target = out_dir / f"{path.stem}_{method}.png"
    with atomic_open(target, "wb") as handle:
        Image.fromarray(to_uint8(adv)[0]).save(handle, format="PNG")
    return {
        "path": str(path),
        "adversarial": str(target),
        "clean_pred": classes[int(p_clean.argmax())],
        "clean_prob": float(p_clean.max()),
        "adv_pred": classes[int(p_adv.argmax())],
        "adv_prob": float(p_adv.max()),
        "error": "",
    }
