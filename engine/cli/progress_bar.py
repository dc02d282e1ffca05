"""Terminal progress for engine events: one tqdm bar per stage, epoch summaries as lines."""

from __future__ import annotations

import logging
import sys

from tqdm import tqdm

from engine.core.progress import Progress

_SINGULAR = {"images": "image", "batches": "batch", "models": "model", "items": "item", "datasets": "dataset"}


class TerminalProgress:
    """Callable progress sink; bars are hidden when stderr is not a terminal (tqdm's ``disable=None``)."""

    def __init__(self) -> None:
        self._bar: tqdm | None = None
        self._key: tuple | None = None

    def __call__(self, p: Progress) -> None:
        if p.unit == "epochs":
            self._epoch_line(p)
            return
        key = (p.stage, p.unit, p.total)
        if key != self._key:
            self.close()
            self._bar = tqdm(
                total=p.total,
                desc=p.stage,
                unit=_SINGULAR.get(p.unit, p.unit),
                leave=False,
                disable=None,
                file=sys.stderr,
                dynamic_ncols=True,
            )
            self._key = key
        self._bar.n = p.done
        if "loss" in p.metrics:
            self._bar.set_postfix(loss=f"{p.metrics['loss']:.4f}", refresh=False)
        self._bar.refresh()
        if p.done >= p.total:
            self.close()

    def _epoch_line(self, p: Progress) -> None:
        m = p.metrics
        tqdm.write(
            f"{p.stage}: epoch {p.done}/{p.total}  train loss {m['train_loss']:.4f} acc {m['train_acc']:.3f}  "
            f"val loss {m['val_loss']:.4f} acc {m['val_acc']:.3f} bal.acc {m['val_balanced_accuracy']:.3f}  "
            f"({m['images_per_s']:.0f} img/s)",
            file=sys.stderr,
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        self._bar, self._key = None, None


class TqdmLoggingHandler(logging.Handler):
    """Log lines that do not tear the progress bars."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record), file=sys.stderr)
        except Exception:  # logging must never raise
            self.handleError(record)
