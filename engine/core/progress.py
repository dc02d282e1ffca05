"""Progress reports and cancellation as plain Python (no Qt): the CLI and the GUI draw the same events."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from engine.core.errors import Cancelled


@dataclass(frozen=True)
class Progress:
    """One progress event of a long operation.

    ``stage`` names the step ("decode", "train A", "fgsm A", ...), ``done``/``total`` count its units
    (images, batches or epochs, named by ``unit``), ``metrics`` carries optional live numbers such as
    the loss, and ``message`` a human-readable line for logs.
    """

    stage: str
    done: int
    total: int
    unit: str = "items"
    message: str = ""
    metrics: dict[str, float] = field(default_factory=dict)

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 0.0


ProgressCallback = Callable[[Progress], None]


class CancelToken:
    """Thread-safe cancellation flag; long engine calls check it once per batch."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self, what: str = "operation") -> None:
        if self._event.is_set():
            raise Cancelled(f"{what} cancelled by the user")


def report(on_progress: ProgressCallback | None, *args, **kwargs) -> None:
    """Send ``Progress(*args, **kwargs)`` to ``on_progress`` when there is one."""
    if on_progress is not None:
        on_progress(Progress(*args, **kwargs))


def check_cancel(cancel: CancelToken | None, what: str = "operation") -> None:
    if cancel is not None:
        cancel.raise_if_cancelled(what)
