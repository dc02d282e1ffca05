"""Which edition of HistoGuard is running: the full one (PyTorch: training, white-box attacks) or the lean
"Diagnose" edition (onnxruntime only: prediction, the black-box attack, INT8 quantisation).

The installers ship the Diagnose edition, which is a tenth of the size (see packaging/README.md); the
same code runs in both, and whatever needs PyTorch says so instead of failing with an import error.
"""

from __future__ import annotations

import importlib.util
import os

FULL, DIAGNOSE = "full", "diagnose"
TORCH_MODULES = ("torch", "torchvision")
DIAGNOSE_COMMANDS = ("predict", "blackbox", "certify", "explain --method occlusion", "quantize", "data", "demo-data")


def edition() -> str:
    """``full`` when PyTorch can be imported (without importing it: that takes seconds), else ``diagnose``.

    ``HISTOGUARD_EDITION=diagnose`` makes a full install behave as the Diagnose edition (for tests)."""
    if os.environ.get("HISTOGUARD_EDITION", "").lower() == DIAGNOSE:
        return DIAGNOSE
    try:
        return FULL if importlib.util.find_spec("torch") is not None else DIAGNOSE
    except (ImportError, ValueError):
        return DIAGNOSE


def is_missing_torch(exc: BaseException) -> bool:
    """True for the ImportError of a PyTorch module (what the Diagnose edition raises for full-only work)."""
    return isinstance(exc, ImportError) and (getattr(exc, "name", None) or "").split(".")[0] in TORCH_MODULES


def needs_full_edition(what: str) -> str:
    """The message for work the Diagnose edition cannot do."""
    return (
        f"{what} needs PyTorch, which this Diagnose edition of HistoGuard leaves out. It can run "
        f"{', '.join(DIAGNOSE_COMMANDS)} and the Diagnose page; for training and white-box attacks install the full "
        "edition (`pip install histoguard`, see the README)."
    )
