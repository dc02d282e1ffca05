"""The batch work of one epoch: training steps (clean or adversarial, mixed precision, resumable mid-epoch) and
the validation loss."""

from __future__ import annotations

import logging
import math
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F

from engine.attacks.stain import hed_jitter
from engine.core.progress import check_cancel, report
from engine.data.arrays import ArraySet, batches
from engine.models.tensors import to_tensor
from engine.train.augment import augment
from engine.train.awp import awp_on, perturb
from engine.train.defences import adversarial_inputs, defence_loss
from engine.train.distributed import (
    SINGLE,
    DistContext,
    all_reduce_mean,
    all_reduce_sums,
    epoch_order,
    reduce_classification,
    unwrap,
)
from engine.train.prefetch import batch_images

log = logging.getLogger(__name__)


def train_epoch(run, epoch: int) -> dict:
    """One epoch of ``run`` (an ``engine.train.session.TrainSession``); a cancel between batches saves the position
    in ``last.pt`` (see ``TrainState.partial``)."""
    model, train, cfg, state = run.model, run.train, run.cfg, run.state
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
            run.save_partial()
            log.info("%s: cancelled in epoch %d after batch %d; last.pt can resume", run.name, epoch, b - 1)
            check_cancel(run.cancel, f"training {run.name}")
        metrics: dict[str, float] = {"epoch": epoch}
        if len(idx) >= 2:  # BatchNorm cannot train on a batch of one
            metrics["loss"], correct = _step(run, images, train.labels[idx], gen, epoch)
            sums["loss_sum"] += metrics["loss"] * len(idx)
            sums["correct"] += correct
            sums["seen"] += len(idx)
        sums["batches_done"] = b
        report(run.on_progress, f"train {run.name}", b, n_batches, unit="batches", metrics=metrics)
    sums = all_reduce_sums({k: sums[k] for k in ("loss_sum", "correct", "seen")}, run.dist)
    seen = max(sums["seen"], 1)
    return {"loss": sums["loss_sum"] / seen, "acc": sums["correct"] / seen}


def _step(run, images: np.ndarray | torch.Tensor, labels: np.ndarray, gen: torch.Generator, epoch: int):
    """One optimizer step: flips and rotations, HED jitter, the defence's inputs, AWP around the step, then the EMA."""
    cfg = run.cfg
    x = to_tensor(images, run.device, run.channels_last)
    y = torch.from_numpy(labels).to(run.device)
    if cfg.augment:
        x = augment(x, gen)
    if cfg.hed_scale or cfg.hed_shift:
        x = hed_jitter(x, scale=cfg.hed_scale, shift=cfg.hed_shift, generator=gen)
        x = x.contiguous(memory_format=torch.channels_last) if run.channels_last else x
    inputs = adversarial_inputs(run.model, x, y, cfg, gen)
    awp = _perturb_weights(run, inputs, y) if awp_on(cfg, epoch) else None
    loss, logits = defence_loss(run.model, inputs, y, cfg, run.weights, run.amp)
    run.opt.zero_grad(set_to_none=True)
    if run.scaler is not None:
        run.scaler.scale(loss).backward()
        run.scaler.step(run.opt)
        run.scaler.update()
    else:
        loss.backward()
        run.opt.step()
    if awp is not None:
        awp.restore()
    if run.ema is not None:
        run.ema.update(unwrap(run.model))
    run.sched.step()
    return loss.item(), int((logits.argmax(1) == y).sum().item())


def _perturb_weights(run, inputs, y: torch.Tensor):
    """AWP's perturbation of the step (``engine.train.awp``), its extra pass through the raw network (outside DDP's
    hooks; under DDP the gradients are averaged over the ranks by hand)."""
    net = unwrap(run.model)

    def loss_fn() -> torch.Tensor:
        return defence_loss(net, inputs, y, run.cfg, run.weights, run.amp)[0]

    reduce = partial(all_reduce_mean, ctx=run.dist) if run.dist.active else None
    return perturb(net, loss_fn, run.cfg.awp_gamma, reduce)


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
