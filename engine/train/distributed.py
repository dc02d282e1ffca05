"""Multi-process training with torch DistributedDataParallel (DDP), one process per GPU, started by ``torchrun``.

torchrun sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` (and the rendezvous address) in every process it
starts. Without them, or with ``WORLD_SIZE=1``, every helper here is a no-op that returns its input, so a
plain ``histoguard train`` runs exactly as before and pays nothing.

Under DDP every rank holds the same model; each trains on its own disjoint shard of every epoch and the
gradients are averaged, so the global batch is ``batch_size x world_size``. Decisions (best epoch, early
stop) come from all-reduced metric sums or are broadcast from rank 0, so all ranks agree; only rank 0
writes files. Every collective must be reached by all ranks in the same order, or the job hangs.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from engine.core.errors import ConfigError, option
from engine.models.device import resolve_device

log = logging.getLogger(__name__)
# rank 0 may decode a whole dataset while the others wait for its cache: give that wait hours, not minutes
MAIN_FIRST_TIMEOUT = timedelta(hours=4)


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in the job: rank 0 of 1 (one process) unless started by torchrun."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device | None = None  # this rank's device once ``init_distributed`` ran (cuda:LOCAL_RANK or cpu)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


SINGLE = DistContext()


def env_context() -> DistContext:
    """Rank and world size from torchrun's environment (no process group is started); RANK alone, without
    WORLD_SIZE > 1, is someone else's variable and means one process."""
    try:
        world = int(os.environ.get("WORLD_SIZE") or 1)
        if world <= 1:
            return SINGLE
        rank, local = int(os.environ.get("RANK") or 0), int(os.environ.get("LOCAL_RANK") or 0)
    except ValueError:
        raise ConfigError("WORLD_SIZE, RANK and LOCAL_RANK must be integers; start the job with torchrun") from None
    if not 0 <= rank < world:
        raise ConfigError(f"RANK {rank} is not in 0..WORLD_SIZE-1 ({world}); start the job with torchrun")
    return DistContext(rank, world, local)


def init_distributed(device_name: str = "auto") -> DistContext:
    """Join torchrun's process group (NCCL on CUDA, one GPU per local rank; gloo on CPU); idempotent.

    One process (no torchrun environment): returns ``SINGLE`` without touching torch.distributed.
    """
    ctx = env_context()
    if not ctx.active:
        return SINGLE
    if not dist.is_available():
        raise ConfigError("this torch build has no torch.distributed; train in one process (without torchrun)")
    device = resolve_device(device_name)
    if device.type == "cuda":
        if ctx.local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"LOCAL_RANK {ctx.local_rank} but this machine has {torch.cuda.device_count()} GPU(s); "
                "start at most one process per GPU (--nproc_per_node)"
            )
        device = torch.device("cuda", ctx.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, device_id=device if device.type == "cuda" else None)
        log.info("rank %d of %d joined the %s process group on %s", ctx.rank, ctx.world_size, backend, device)
    return DistContext(dist.get_rank(), dist.get_world_size(), ctx.local_rank, device)


@contextlib.contextmanager
def distributed_session(device_name: str = "auto") -> Iterator[DistContext]:
    """``init_distributed`` for the length of a command; a process group started here is destroyed after a
    normal exit. After an error it is left alone: the process ends and torchrun stops the other ranks."""
    owned = env_context().active and not (dist.is_available() and dist.is_initialized())
    ctx = init_distributed(device_name)
    yield ctx
    if owned and dist.is_initialized():
        dist.destroy_process_group()


def require_single_process(what: str) -> None:
    """Refuse to run ``what`` under torchrun with more than one process."""
    ctx = env_context()
    if ctx.active:
        raise ConfigError(
            f"{what} runs in one process, but torchrun started {ctx.world_size} (WORLD_SIZE); use "
            "`torchrun ... -m engine train ...` for multi-GPU training, or run it without torchrun"
        )


def shard(order: np.ndarray, ctx: DistContext) -> np.ndarray:
    """This rank's share of ``order`` (as torch's DistributedSampler): ``order`` is padded with its own first
    items to a multiple of ``world_size``, then rank r takes items r, r + world_size, ... Every rank gets
    the same number of items, hence of batches and optimizer steps: a rank with one step more would wait
    forever for the others' gradients."""
    if not ctx.active:
        return order
    padded = np.resize(order, shard_length(len(order), ctx) * ctx.world_size)  # np.resize repeats cyclically
    return padded[ctx.rank :: ctx.world_size]


def shard_length(n: int, ctx: DistContext) -> int:
    return math.ceil(n / ctx.world_size)


def epoch_order(n: int, seed: int, ctx: DistContext) -> tuple[torch.Generator, np.ndarray]:
    """The epoch's shuffled indices for this rank, and the generator for its augmentation and attacks.

    All ranks draw the same permutation from ``seed`` and take disjoint shards of it. Rank 0's generator
    continues after the permutation (as in one process); the others get their own stream, so their
    augmentations are not copies of rank 0's.
    """
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(n, generator=gen).numpy()
    if ctx.rank > 0:
        gen = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, ctx.rank]).generate_state(1)[0]))
    return gen, shard(order, ctx)


def all_reduce_sums(sums: dict[str, float], ctx: DistContext) -> dict[str, float]:
    """Every value summed over all ranks (float64); one process gets ``sums`` back unchanged."""
    if not ctx.active:
        return sums
    t = torch.tensor(list(sums.values()), dtype=torch.float64, device=ctx.device)
    dist.all_reduce(t)
    return dict(zip(sums, t.tolist()))


def all_reduce_mean(tensors: list[torch.Tensor], ctx: DistContext) -> None:
    """Each tensor replaced in place by its mean over all ranks (one process: unchanged)."""
    if ctx.active:
        for t in tensors:
            dist.all_reduce(t)
            t.div_(ctx.world_size)


def reduce_classification(loss_sum: float, pred: np.ndarray, labels: np.ndarray, classes, ctx: DistContext) -> dict:
    """Loss, accuracy and balanced accuracy (mean recall over ``classes``) over the predictions of all ranks."""
    sums = {"loss": loss_sum, "n": len(labels), "correct": int((pred == labels).sum())}
    for c in classes:
        sums[f"n{c}"] = int((labels == c).sum())
        sums[f"hit{c}"] = int((pred[labels == c] == c).sum())
    s = all_reduce_sums(sums, ctx)
    recalls = [s[f"hit{c}"] / s[f"n{c}"] for c in classes if s[f"n{c}"]]
    return {"loss": s["loss"] / s["n"], "acc": s["correct"] / s["n"], "bacc": float(np.mean(recalls))}


def barrier(ctx: DistContext, timeout: timedelta | None = None) -> None:
    if ctx.active:
        cuda = ctx.device is not None and ctx.device.type == "cuda"
        dist.barrier(device_ids=[ctx.device.index] if cuda else None, timeout=timeout)


@contextlib.contextmanager
def main_first(ctx: DistContext) -> Iterator[None]:
    """Rank 0 runs the block first (it writes run folder, demo data, decoded cache); the others run it after,
    reading what rank 0 wrote. An error in rank 0 skips its barrier: torchrun then stops the others."""
    if ctx.active and not ctx.is_main:
        barrier(ctx, MAIN_FIRST_TIMEOUT)
    yield
    if ctx.active and ctx.is_main:
        barrier(ctx, MAIN_FIRST_TIMEOUT)


def broadcast_object(obj, ctx: DistContext):
    """Rank 0's ``obj`` (a small picklable value such as an epoch's decision) on every rank."""
    if not ctx.active:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0, device=ctx.device if ctx.device.type == "cuda" else None)
    return box[0]


def wrap_ddp(model: nn.Module, ctx: DistContext) -> nn.Module:
    """``model`` in DistributedDataParallel (which copies rank 0's weights to all ranks); one process: ``model``."""
    if not ctx.active:
        return model
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, output_device=ids[0] if ids else None)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DDP wrapper (what checkpoints store and evaluation uses without collectives)."""
    return model.module if isinstance(model, DistributedDataParallel) else model


def sync_buffers(model: nn.Module, ctx: DistContext) -> None:
    """Rank 0's buffers (BatchNorm running statistics) on every rank.

    DDP copies them only before a training forward, so after an epoch's last batch each rank holds the
    statistics of its own batches; evaluation and checkpoints need one set.
    """
    if ctx.active:
        for buf in unwrap(model).buffers():
            dist.broadcast(buf, src=0)


def check_resume(payload: dict, ctx: DistContext, path) -> None:
    """A checkpoint resumes only with the number of processes that wrote it: the global batch, the steps
    per epoch and hence the learning-rate schedule depend on it."""
    saved = int(payload.get("world_size", 1))
    if saved != ctx.world_size:
        raise ConfigError(
            f"{path} was written by a run of {saved} process(es), this one has {ctx.world_size}; resume it "
            f"with {saved} (torchrun --nproc_per_node/--nnodes), or use a new run folder or {option('force')}"
        )


def resume_fields(ctx: DistContext) -> dict:
    """What ``last.pt`` records about the job (nothing for one process, so its format stays as before)."""
    return {"world_size": ctx.world_size} if ctx.active else {}
