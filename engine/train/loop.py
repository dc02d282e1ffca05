"""One training loop for every model: AdamW, warm-up + cosine schedule, class-weighted loss, early
stopping on validation balanced accuracy, best/last checkpoints, resume, progress and cancel.

``fit`` reads as the loop it is: set up a ``TrainSession`` (``engine.train.session``), then per epoch train
and validate (``run_epoch``), select and save (``select_and_save``), then ``finish``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from engine.core.config import TrainConfig
from engine.core.metadata import ModelMeta
from engine.core.progress import CancelToken, ProgressCallback
from engine.data.arrays import ArraySet
from engine.train.session import TrainSession

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    best_epoch: int
    best_score: float
    epochs_run: int
    stopped_early: bool
    history: list[dict] = field(default_factory=list)
    checkpoint: Path | None = None

    def summary(self, how_trained: dict, stored=str) -> dict:
        """JSON-ready record of the training, as stored in report.json and train.json; ``stored`` writes the
        checkpoint's path as the run folder stores paths (``RunFolder.relative``).

        Adversarially trained models are selected by balanced accuracy under PGD on validation images, models
        trained with Gaussian noise by balanced accuracy on noisy validation images (``selected_by``);
        ``best_val_balanced_accuracy`` is then that score.
        """
        selected_by = "val_balanced_accuracy"
        for key in ("val_pgd_balanced_accuracy", "val_noisy_balanced_accuracy"):
            if any(key in row for row in self.history):
                selected_by = key
        return {
            "best_epoch": self.best_epoch,
            "best_val_balanced_accuracy": self.best_score,
            "selected_by": selected_by,
            "catastrophic_overfitting_epochs": [r["epoch"] for r in self.history if r.get("catastrophic_overfitting")],
            "epochs_run": self.epochs_run,
            "stopped_early": self.stopped_early,
            "history": self.history,
            "checkpoint": stored(self.checkpoint),
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
    metadata: ModelMeta,
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
    session = TrainSession.start(
        model, train, cfg, out_dir=out_dir, name=name, metadata=metadata, resume=resume, on_progress=on_progress,
        cancel=cancel,
    )  # fmt: skip
    for epoch in range(session.state.epoch + 1, cfg.epochs + 1):
        if session.state.bad_epochs >= cfg.patience:
            break
        row, score = session.run_epoch(epoch, val)
        session.select_and_save(epoch, row, score)
    best, stopped = session.finish()
    state = session.state
    return TrainResult(state.best_epoch, state.best_score, state.epoch, stopped, state.history, best)
