"""One ``fit`` call's training session: set up (device, optimizer, schedule, resume), run an epoch, select and save
the kept epoch, finish. ``engine.train.loop.fit`` drives it; ``engine.train.epoch`` holds the batch work."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from engine.core.config import TrainConfig
from engine.core.errors import ConfigError, DataError, ModelError, option
from engine.core.metadata import ModelMeta
from engine.core.progress import CancelToken, ProgressCallback, report
from engine.data.arrays import ArraySet
from engine.models.checkpoint import read_checkpoint, save_checkpoint
from engine.models.device import autocast_dtype, resolve_device
from engine.train.distributed import (
    SINGLE,
    DistContext,
    barrier,
    broadcast_object,
    check_resume,
    init_distributed,
    resume_fields,
    shard_length,
    sync_buffers,
    unwrap,
    wrap_ddp,
)
from engine.train.ema import WeightEMA, make_ema
from engine.train.epoch import evaluate_loss, train_epoch
from engine.train.robust_val import catastrophic_overfitting, noisy_validation, robust_subset, robust_validation
from engine.train.state import TrainState, class_weights, make_optimizer, make_scheduler

log = logging.getLogger(__name__)
TIE = 1e-9  # validation scores this close are equal: the later, longer-trained epoch wins


@dataclass
class TrainSession:
    """What every epoch and every training step needs, gathered once per ``fit`` call."""

    model: nn.Module  # the DDP wrapper under torchrun, else the model itself
    train: ArraySet
    cfg: TrainConfig
    opt: torch.optim.Optimizer
    sched: object
    scaler: object
    weights: torch.Tensor  # class weights of the loss
    device: torch.device
    amp: torch.dtype | None
    channels_last: bool
    name: str
    out_dir: Path
    metadata: ModelMeta
    state: TrainState
    on_progress: ProgressCallback | None = None
    cancel: CancelToken | None = None
    dist: DistContext = SINGLE
    ema: WeightEMA | None = None  # the EMA of the weights (TrainConfig.ema_decay), None when off

    @property
    def kept(self) -> nn.Module:
        """The network that is validated, selected and saved as best.pt: the EMA copy when on, else the model."""
        return self.ema.module if self.ema is not None else unwrap(self.model)

    @property
    def last(self) -> Path:
        return self.out_dir / "last.pt"

    @property
    def best(self) -> Path:
        return self.out_dir / "best.pt"

    # --- setup ------------------------------------------------------------------------------------------
    @classmethod
    def start(
        cls,
        model: nn.Module,
        train: ArraySet,
        cfg: TrainConfig,
        *,
        out_dir: Path,
        name: str,
        metadata: ModelMeta,
        resume: bool,
        on_progress: ProgressCallback | None,
        cancel: CancelToken | None,
    ) -> TrainSession:
        """Check the data, join torchrun's job if there is one, place the model, build the optimizer and schedule,
        and restore ``last.pt`` when resuming (repairing a ``best.pt`` that fell behind)."""
        if len(train) < 2 or len(np.unique(train.labels)) < 2:
            raise DataError(
                f"training set of {name} has {len(train)} images of {len(np.unique(train.labels))} class(es); "
                "need both classes"
            )
        ctx = init_distributed(cfg.device)
        if ctx.active and cancel is not None:
            raise ConfigError(
                f"training under torchrun cannot be cancelled by a token; stop it with Ctrl-C and {option('resume')}"
            )
        device = ctx.device if ctx.active else resolve_device(cfg.device)
        model.to(device)
        model.to(memory_format=torch.channels_last)  # faster on CUDA and on CPU (oneDNN), for every architecture
        steps = math.ceil(shard_length(len(train), ctx) / cfg.batch_size)
        opt = make_optimizer(model, cfg)
        sched = make_scheduler(opt, steps, cfg.epochs)
        amp = autocast_dtype(device, cfg.precision)
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed input size: let cuDNN pick its fastest kernels once
        session = cls(
            model=wrap_ddp(model, ctx), train=train, cfg=cfg, opt=opt, sched=sched,
            scaler=torch.amp.GradScaler("cuda") if amp == torch.float16 else None,
            weights=class_weights(train.labels).to(device), device=device, amp=amp, channels_last=True, name=name,
            out_dir=out_dir, metadata=metadata, state=TrainState(), on_progress=on_progress if ctx.is_main else None,
            cancel=cancel, dist=ctx, ema=make_ema(model, cfg.ema_decay),
        )  # fmt: skip
        if resume and session.last.exists():
            session._restore(model)
            if ctx.is_main:
                session._repair_best()
        return session

    def _restore(self, model: nn.Module) -> None:
        payload = read_checkpoint(self.last)
        check_resume(payload, self.dist, self.last)
        saved = payload.get("train_config", {})
        if saved:  # settings added since that run was written take their defaults, which it ran with
            saved = {**TrainConfig().__dict__, **saved}
        if saved and saved != {k: v for k, v in self.cfg.__dict__.items()}:
            raise ConfigError(
                f"{self.last} was written with another training configuration; use a new run folder or "
                f"{option('force')}"
            )
        model.load_state_dict(payload["state_dict"])
        self.opt.load_state_dict(payload["optimizer"])
        self.sched.load_state_dict(payload["scheduler"])
        if self.ema is not None:
            self.ema.load(payload)
        self.state = TrainState.from_payload(payload)
        log.info("%s: resuming after epoch %d (best epoch %d)", self.name, self.state.epoch, self.state.best_epoch)

    def _repair_best(self) -> None:
        """Rewrite ``best.pt`` from the restored (kept) weights when the run was killed after saving last.pt of its best
        epoch but before saving best.pt (then best.pt is missing or holds an earlier epoch)."""
        state = self.state
        if state.best_epoch == 0 or state.best_epoch != state.epoch or state.partial:  # partial: mid-epoch weights
            return
        try:
            saved = read_checkpoint(self.best).get("epoch")
        except ModelError:  # missing, or unreadable
            saved = None
        if saved != state.best_epoch:
            log.info("%s: best.pt is behind last.pt (epoch %s, not %d); rewriting it", self.out_dir, saved, state.epoch)
            save_checkpoint(self.best, self.kept, self.metadata, history=state.history, epoch=state.epoch)

    # --- one epoch --------------------------------------------------------------------------------------
    def run_epoch(self, epoch: int, val: ArraySet | None) -> tuple[dict, float]:
        """Train one epoch, validate, and return its history row and selection score (the same on every rank)."""
        t0 = time.perf_counter()
        tr = train_epoch(self, epoch)
        sync_buffers(unwrap(self.model), self.dist)
        if self.ema is not None:
            sync_buffers(self.ema.module, self.dist)
        if val is not None and len(val):
            va = evaluate_loss(
                self.kept, val, self.weights, self.device, self.cfg.batch_size, self.amp, self.channels_last,
                self.dist,
            )  # fmt: skip
        else:
            va = {**tr, "bacc": tr["acc"]}  # no validation images: epochs are compared by training accuracy
        row = {
            "epoch": epoch,
            "train_loss": tr["loss"],
            "train_acc": tr["acc"],
            "val_loss": va["loss"],
            "val_acc": va["acc"],
            "val_balanced_accuracy": va["bacc"],
            "lr": self.opt.param_groups[0]["lr"],
            "seconds": round(time.perf_counter() - t0, 2),
        }
        score = va["bacc"]
        if self.cfg.adversarial == "gaussian" and val is not None and len(val) and self.dist.is_main:
            score = self._noisy_row(val, row)
        elif self.cfg.adversarial != "none" and val is not None and len(val) and self.dist.is_main:
            score = self._robust_row(val, row, epoch)
        row["images_per_s"] = round(len(self.train) / (time.perf_counter() - t0), 1)
        return broadcast_object((row, score), self.dist)  # rank 0's row and score: every rank decides alike

    def _noisy_row(self, val: ArraySet, row: dict) -> float:
        """Add the accuracy on noisy validation images to ``row`` (Gaussian-noise training); the selection score."""
        model, cfg = self.kept, self.cfg
        nv = noisy_validation(model, val, cfg.noise_sigma, cfg.seed, self.device, cfg.batch_size)
        row.update({k: round(v, 4) for k, v in nv.items()})
        return nv["val_noisy_balanced_accuracy"]

    def _robust_row(self, val: ArraySet, row: dict, epoch: int) -> float:
        """Add PGD/FGSM validation accuracy to ``row``, flag catastrophic overfitting; the epoch's selection score."""
        idx = robust_subset(val, seed=self.cfg.seed)
        rv = robust_validation(self.kept, val, idx, self.cfg, self.device, self.cfg.batch_size)
        row.update({k: round(v, 4) for k, v in rv.items()})
        row["catastrophic_overfitting"] = catastrophic_overfitting(self.state.history, rv)
        if row["catastrophic_overfitting"]:
            log.warning(
                "%s epoch %d: catastrophic overfitting suspected: PGD validation accuracy fell to %.3f (FGSM %.3f); "
                "the best earlier epoch is kept",
                self.name,
                epoch,
                rv["val_pgd_acc"],
                rv["val_fgsm_acc"],
            )
        return rv["val_pgd_balanced_accuracy"]

    # --- select and save ----------------------------------------------------------------------------------
    def select_and_save(self, epoch: int, row: dict, score: float) -> None:
        """Keep the epoch if it is the best so far (a tie goes to the later epoch), count epochs without a strict
        improvement, and (rank 0) write last.pt, then best.pt, log and report the epoch."""
        state = self.state
        state.history.append(row)
        improved = score > state.best_score + TIE
        if improved or abs(score - state.best_score) <= TIE:
            state.best_score, state.best_epoch = score, epoch
        state.bad_epochs = 0 if improved else state.bad_epochs + 1
        state.epoch = epoch
        if not self.dist.is_main:
            return
        # last.pt first: a kill between the two writes leaves a best.pt that _repair_best rebuilds from last.pt,
        # while the other order would leave a best.pt of an epoch that last.pt (and a resumed run) never saw
        payload = {**self._payload(), **resume_fields(self.dist)}
        save_checkpoint(self.last, unwrap(self.model), self.metadata, **payload)
        if state.best_epoch == epoch:
            save_checkpoint(self.best, self.kept, self.metadata, history=state.history, epoch=epoch)
        log.info(
            "%s epoch %d/%d: train loss %.4f acc %.3f | val loss %.4f acc %.3f bacc %.3f%s (%.1f img/s)",
            self.name,
            epoch,
            self.cfg.epochs,
            row["train_loss"],
            row["train_acc"],
            row["val_loss"],
            row["val_acc"],
            row["val_balanced_accuracy"],
            " *best*" if state.best_epoch == epoch else "",
            row["images_per_s"],
        )
        report(
            self.on_progress,
            f"train {self.name}",
            epoch,
            self.cfg.epochs,
            unit="epochs",
            metrics=row,
            message=f"epoch {epoch}: val balanced accuracy {row['val_balanced_accuracy']:.3f}",
        )

    def save_partial(self) -> None:
        """last.pt with the position in the epoch (``state.partial``), for a cancel between batches."""
        save_checkpoint(self.last, unwrap(self.model), self.metadata, **self._payload())

    def _payload(self) -> dict:
        """What last.pt holds besides the raw weights: optimizer, schedule, state, and the EMA when on."""
        ema = self.ema.state() if self.ema is not None else {}
        return {**self.state.to_payload(self.opt, self.sched, self.cfg), **ema}

    # --- finish -------------------------------------------------------------------------------------------
    def finish(self) -> tuple[Path, bool]:
        """Load the kept weights into the model (eval mode, contiguous); return best.pt and whether training
        stopped early."""
        state, cfg = self.state, self.cfg
        stopped = state.bad_epochs >= cfg.patience and state.epoch < cfg.epochs
        flagged = [r["epoch"] for r in state.history if r.get("catastrophic_overfitting")]
        if flagged and self.dist.is_main:
            log.warning(
                "%s: catastrophic overfitting in epoch(s) %s; kept epoch %d", self.name, flagged, state.best_epoch
            )
        if stopped and self.dist.is_main:
            log.info(
                "%s: early stop, no improvement for %d epochs; best epoch %d", self.name, cfg.patience, state.best_epoch
            )
        barrier(self.dist)  # rank 0 has written best.pt
        model = unwrap(self.model)
        model.load_state_dict(read_checkpoint(self.best)["state_dict"])
        model.to(memory_format=torch.contiguous_format).eval()
        return self.best, stopped
