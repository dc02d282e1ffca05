"""One training loop for every model: AdamW, warm-up + cosine schedule, class-weighted loss, early
stopping on validation balanced accuracy, best/last checkpoints, resume, progress and cancel.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.core.config import TrainConfig
from engine.core.errors import ConfigError, DataError, ModelError
from engine.core.progress import CancelToken, ProgressCallback, check_cancel, report
from engine.data.arrays import ArraySet, batches
from engine.models.checkpoint import read_checkpoint, save_checkpoint
from engine.models.device import autocast_dtype, resolve_device
from engine.models.tensors import to_tensor
from engine.train.augment import augment
from engine.train.defences import adversarial_loss
from engine.train.distributed import (
    SINGLE,
    DistContext,
    all_reduce_sums,
    barrier,
    broadcast_object,
    check_resume,
    epoch_order,
    init_distributed,
    reduce_classification,
    resume_fields,
    shard_length,
    sync_buffers,
    unwrap,
    wrap_ddp,
)
from engine.train.prefetch import batch_images
from engine.train.robust_val import catastrophic_overfitting, robust_subset, robust_validation
from engine.train.state import TrainState, class_weights, make_optimizer, make_scheduler

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    best_epoch: int
    best_score: float
    epochs_run: int
    stopped_early: bool
    history: list[dict] = field(default_factory=list)
    checkpoint: Path | None = None

    def summary(self, how_trained: dict) -> dict:
        """JSON-ready record of the training, as stored in report.json and train.json.

        Adversarially trained models are selected by balanced accuracy under PGD on validation images
        (``selected_by``); ``best_val_balanced_accuracy`` is then that robust score.
        """
        robust = any("val_pgd_acc" in row for row in self.history)
        return {
            "best_epoch": self.best_epoch,
            "best_val_balanced_accuracy": self.best_score,
            "selected_by": "val_pgd_balanced_accuracy" if robust else "val_balanced_accuracy",
            "catastrophic_overfitting_epochs": [r["epoch"] for r in self.history if r.get("catastrophic_overfitting")],
            "epochs_run": self.epochs_run,
            "stopped_early": self.stopped_early,
            "history": self.history,
            "checkpoint": str(self.checkpoint),
            "how_trained": how_trained,
        }


def fit(
    model: nn.Module,
    train: ArraySet,
    val: ArraySet | None,
    cfg: TrainConfig,
    *,
    out_dir: Path,
    name: str,
    metadata: dict,
    resume: bool = True,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> TrainResult:
    """Train ``model`` in place; keep the best weights (by validation balanced accuracy) in ``best.pt``.

    Of epochs with equal validation balanced accuracy the later one is kept (on an easy validation set
    the metric saturates early, and the first perfect epoch is rarely the best trained); training stops
    after ``cfg.patience`` epochs without a strict improvement.

    ``last.pt`` in ``out_dir`` holds the full state after each epoch; with ``resume`` a later call
    continues from it (same config required), so an interrupted run loses at most one epoch.

    Under torchrun (``engine.train.distributed``) the model trains in DDP: each rank on its shard of every
    epoch (global batch ``batch_size`` x world size), validation sums all-reduced, rank 0's decisions
    broadcast; only rank 0 writes checkpoints, logs epochs and reports progress.
    """
    if len(train) < 2 or len(np.unique(train.labels)) < 2:
        raise DataError(
            f"training set of {name} has {len(train)} images of {len(np.unique(train.labels))} class(es); "
            "need both classes"
        )
    ctx = init_distributed(cfg.device)
    if ctx.active and cancel is not None:
        raise ConfigError("training under torchrun cannot be cancelled by a token; stop it with Ctrl-C and --resume")
    on_progress = on_progress if ctx.is_main else None
    device = ctx.device if ctx.active else resolve_device(cfg.device)
    channels_last = True  # faster on CUDA and on CPU (oneDNN), for every architecture here
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    steps = math.ceil(shard_length(len(train), ctx) / cfg.batch_size)
    opt = make_optimizer(model, cfg)
    sched = make_scheduler(opt, steps, cfg.epochs)
    state = TrainState()
    last, best = out_dir / "last.pt", out_dir / "best.pt"
    if resume and last.exists():
        state = _restore(last, model, opt, sched, cfg, name, ctx)
        if ctx.is_main:
            _repair_best(best, model, metadata, state)
    weights = class_weights(train.labels).to(device)
    amp = autocast_dtype(device, cfg.precision)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick its fastest kernels once
    scaler = torch.amp.GradScaler("cuda") if amp == torch.float16 else None
    run = _Loop(
        wrap_ddp(model, ctx),
        train,
        cfg,
        opt,
        sched,
        scaler,
        weights,
        device,
        amp,
        channels_last,
        name,
        last,
        metadata,
        on_progress,
        cancel,
        ctx,
    )
    for epoch in range(state.epoch + 1, cfg.epochs + 1):
        if state.bad_epochs >= cfg.patience:
            break
        t0 = time.perf_counter()
        tr = _train_epoch(run, state, epoch)
        sync_buffers(model, ctx)
        va = (
            evaluate_loss(model, val, weights, device, cfg.batch_size, amp, channels_last, ctx)
            if val is not None and len(val)
            else {**tr, "bacc": tr["acc"]}  # no validation images: epochs are compared by training accuracy
        )
        row = {
            "epoch": epoch,
            "train_loss": tr["loss"],
            "train_acc": tr["acc"],
            "val_loss": va["loss"],
            "val_acc": va["acc"],
            "val_balanced_accuracy": va["bacc"],
            "lr": opt.param_groups[0]["lr"],
            "seconds": round(time.perf_counter() - t0, 2),
        }
        score = va["bacc"]
        if cfg.adversarial != "none" and val is not None and len(val) and ctx.is_main:
            score = _robust_row(run, val, state, row, epoch)
        row["images_per_s"] = round(len(train) / (time.perf_counter() - t0), 1)
        row, score = broadcast_object((row, score), ctx)  # rank 0's row and score: every rank decides alike
        state.history.append(row)
        improved = score > state.best_score + 1e-9
        if improved or abs(score - state.best_score) <= 1e-9:  # a tie goes to the later, longer-trained epoch
            state.best_score, state.best_epoch = score, epoch
        state.bad_epochs = 0 if improved else state.bad_epochs + 1
        state.epoch = epoch
        if not ctx.is_main:
            continue
        # last.pt first: a kill between the two writes leaves a best.pt that _repair_best rebuilds from last.pt,
        # while the other order would leave a best.pt of an epoch that last.pt (and a resumed run) never saw
        save_checkpoint(last, model, metadata, **state.to_payload(opt, sched, cfg), **resume_fields(ctx))
        if state.best_epoch == epoch:
            save_checkpoint(best, model, metadata, history=state.history, epoch=epoch)
        log.info(
            "%s epoch %d/%d: train loss %.4f acc %.3f | val loss %.4f acc %.3f bacc %.3f%s (%.1f img/s)",
            name,
            epoch,
            cfg.epochs,
            tr["loss"],
            tr["acc"],
            va["loss"],
            va["acc"],
            va["bacc"],
            " *best*" if state.best_epoch == epoch else "",
            row["images_per_s"],
        )
        report(
            on_progress,
            f"train {name}",
            epoch,
            cfg.epochs,
            unit="epochs",
            metrics=row,
            message=f"epoch {epoch}: val balanced accuracy {va['bacc']:.3f}",
        )
    stopped = state.bad_epochs >= cfg.patience and state.epoch < cfg.epochs
    flagged = [r["epoch"] for r in state.history if r.get("catastrophic_overfitting")]
    if flagged and ctx.is_main:
        log.warning("%s: catastrophic overfitting in epoch(s) %s; kept epoch %d", name, flagged, state.best_epoch)
    if stopped and ctx.is_main:
        log.info("%s: early stop, no improvement for %d epochs; best epoch %d", name, cfg.patience, state.best_epoch)
    barrier(ctx)  # rank 0 has written best.pt
    model.load_state_dict(read_checkpoint(best)["state_dict"])
    model.to(memory_format=torch.contiguous_format).eval()
    return TrainResult(state.best_epoch, state.best_score, state.epoch, stopped, state.history, best)


def _robust_row(run: _Loop, val: ArraySet, state: TrainState, row: dict, epoch: int) -> float:
    """Add PGD/FGSM validation accuracy to ``row``, flag catastrophic overfitting; the epoch's selection score."""
    idx = robust_subset(val, seed=run.cfg.seed)
    rv = robust_validation(unwrap(run.model), val, idx, run.cfg, run.device, run.cfg.batch_size)
    row.update({k: round(v, 4) for k, v in rv.items()})
    row["catastrophic_overfitting"] = catastrophic_overfitting(state.history, rv)
    if row["catastrophic_overfitting"]:
        log.warning(
            "%s epoch %d: catastrophic overfitting suspected: PGD validation accuracy fell to %.3f (FGSM %.3f); "
            "the best earlier epoch is kept",
            run.name,
            epoch,
            rv["val_pgd_acc"],
            rv["val_fgsm_acc"],
        )
    return rv["val_pgd_balanced_accuracy"]


def _restore(last: Path, model, opt, sched, cfg: TrainConfig, name: str, ctx: DistContext) -> TrainState:
    payload = read_checkpoint(last)
    check_resume(payload, ctx, last)
    saved = payload.get("train_config", {})
    if saved:  # settings added since that run was written take their defaults, which it ran with
        saved = {**TrainConfig().__dict__, **saved}
    if saved and saved != {k: v for k, v in cfg.__dict__.items()}:
        raise ConfigError(f"{last} was written with another training configuration; use a new run folder or --force")
    model.load_state_dict(payload["state_dict"])
    opt.load_state_dict(payload["optimizer"])
    sched.load_state_dict(payload["scheduler"])
    state = TrainState.from_payload(payload)
    log.info("%s: resuming after epoch %d (best epoch %d)", name, state.epoch, state.best_epoch)
    return state


def _repair_best(best: Path, model: nn.Module, metadata: dict, state: TrainState) -> None:
    """Rewrite ``best.pt`` from the restored weights when the run was killed after saving last.pt of its best
    epoch but before saving best.pt (then best.pt is missing or holds an earlier epoch)."""
    if state.best_epoch == 0 or state.best_epoch != state.epoch or state.partial:  # partial: mid-epoch weights
        return
    try:
        saved = read_checkpoint(best).get("epoch")
    except ModelError:  # missing, or unreadable
        saved = None
    if saved != state.best_epoch:
        log.info("%s: best.pt is behind last.pt (epoch %s, not %d); rewriting it", best.parent, saved, state.epoch)
        save_checkpoint(best, model, metadata, history=state.history, epoch=state.epoch)


@dataclass
class _Loop:
    """What every training step needs, gathered once per ``fit`` call."""

    model: nn.Module
    train: ArraySet
    cfg: TrainConfig
    opt: torch.optim.Optimizer
    sched: object
    scaler: object
    weights: torch.Tensor
    device: torch.device
    amp: torch.dtype | None
    channels_last: bool
    name: str
    last: Path
    metadata: dict
    on_progress: ProgressCallback | None
    cancel: CancelToken | None
    dist: DistContext = SINGLE


def _train_epoch(run: _Loop, state: TrainState, epoch: int) -> dict:
    """One epoch; a cancel between batches saves the position in ``last.pt`` (see ``TrainState.partial``)."""
    model, train, cfg = run.model, run.train, run.cfg
    model.train()
    gen, order = epoch_order(len(train), cfg.seed * 100_003 + epoch, run.dist)  # this rank's shard
    sums = {"loss_sum": 0.0, "correct": 0, "seen": 0, "batches_done": 0}
    part = state.partial if state.partial and state.partial["epoch"] == epoch else None
    if part:
        gen.set_state(part["gen_state"])
        sums = {k: part[k] for k in sums}
        log.info("%s: resuming epoch %d after batch %d", run.name, epoch, part["batches_done"])
    state.partial = None
    n_batches = math.ceil(len(order) / cfg.batch_size)
    todo = list(batches(len(order), cfg.batch_size, order))[sums["batches_done"] :]
    for b, (idx, images) in enumerate(batch_images(train.images, todo, run.device), start=sums["batches_done"] + 1):
        if run.cancel is not None and run.cancel.cancelled:
            state.partial = {"epoch": epoch, "gen_state": gen.get_state(), **sums}
            save_checkpoint(run.last, model, run.metadata, **state.to_payload(run.opt, run.sched, cfg))
            log.info("%s: cancelled in epoch %d after batch %d; last.pt can resume", run.name, epoch, b - 1)
            check_cancel(run.cancel, f"training {run.name}")
        metrics: dict[str, float] = {"epoch": epoch}
        if len(idx) >= 2:  # BatchNorm cannot train on a batch of one
            metrics["loss"], correct = _step(run, images, train.labels[idx], gen)
            sums["loss_sum"] += metrics["loss"] * len(idx)
            sums["correct"] += correct
            sums["seen"] += len(idx)
        sums["batches_done"] = b
        report(run.on_progress, f"train {run.name}", b, n_batches, unit="batches", metrics=metrics)
    sums = all_reduce_sums({k: sums[k] for k in ("loss_sum", "correct", "seen")}, run.dist)
    seen = max(sums["seen"], 1)
    return {"loss": sums["loss_sum"] / seen, "acc": sums["correct"] / seen}


def _step(run: _Loop, images: np.ndarray | torch.Tensor, labels: np.ndarray, gen: torch.Generator) -> tuple[float, int]:
    x = to_tensor(images, run.device, run.channels_last)
    y = torch.from_numpy(labels).to(run.device)
    if run.cfg.augment:
        x = augment(x, gen)
    if run.cfg.adversarial != "none":
        loss, logits = adversarial_loss(run.model, x, y, run.cfg, run.weights, gen, run.amp)
    else:
        with torch.autocast(run.device.type, dtype=run.amp, enabled=run.amp is not None):
            logits = run.model(x)
            loss = F.cross_entropy(logits.float(), y, weight=run.weights)
    run.opt.zero_grad(set_to_none=True)
    if run.scaler is not None:
        run.scaler.scale(loss).backward()
        run.scaler.step(run.opt)
        run.scaler.update()
    else:
        loss.backward()
        run.opt.step()
    run.sched.step()
    return loss.item(), int((logits.argmax(1) == y).sum().item())


@torch.no_grad()
def evaluate_loss(
    model, data: ArraySet, weights, device, batch_size, amp=None, channels_last=False, dist: DistContext = SINGLE
) -> dict:
    """Weighted loss, accuracy and balanced accuracy of ``model`` on ``data`` (eval mode); under DDP each
    rank evaluates a shard (``model`` unwrapped: no collectives) and the counts are summed."""
    model.eval()
    total, preds = 0.0, [np.empty(0, dtype=np.int64)]
    rows = np.arange(len(data))[dist.rank :: dist.world_size]
    for idx in batches(len(rows), batch_size, rows):
        x = to_tensor(data.images[idx], device, channels_last)
        y = torch.from_numpy(data.labels[idx]).to(device)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            logits = model(x).float()
        total += F.cross_entropy(logits, y, weight=weights, reduction="sum").item()
        preds.append(logits.argmax(1).cpu().numpy())
    pred = np.concatenate(preds)
    return reduce_classification(total, pred, data.labels[rows], np.unique(data.labels), dist)
