"""ImageNet weights from a local file or the torch hub cache, never downloaded at run time.

``weights`` may be 'imagenet' (the torchvision file must be in the torch cache, else ModelError says
where to put it), 'auto' (use the cache when the file is there, else train from scratch, said clearly),
or a path to a state dict saved by torchvision or by ``torch.save(model.state_dict())``.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import torch
from torch import nn

from engine.core.errors import ModelError, option

log = logging.getLogger(__name__)


def hub_weights_path(spec) -> Path | None:
    """Where torchvision would cache the ImageNet weights of ``spec`` (whether or not the file exists)."""
    if spec.torchvision_name is None:
        return None
    import torchvision.models as tvm

    enum = getattr(tvm, spec.torchvision_name).DEFAULT
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(enum.url)


def resolve_weights(spec, weights: str) -> Path | None:
    """Map a ``weights`` argument to a file, or None for 'train from scratch'."""
    if weights in ("imagenet", "auto"):
        path = hub_weights_path(spec)
        if path is not None and path.is_file():
            return path
        if weights == "auto":
            log.warning(
                "no ImageNet weights for %s found in the torch cache (%s): training starts FROM SCRATCH",
                spec.name,
                path or "none exist for this model",
            )
            return None
        if path is None:
            raise ModelError(
                f"{spec.name} has no ImageNet weights; train it from scratch ({option('weights', 'none')})"
            )
        raise ModelError(
            f"ImageNet weights for {spec.name} are not in the torch cache: copy the file {path.name} to {path.parent} "
            f"(or choose the file with {option('weights', 'PATH')}, or train from scratch with "
            f"{option('weights', 'none')}); HistoGuard never downloads"
        )
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ModelError(f"weights file {path} does not exist; pass a .pth state dict, 'imagenet', 'auto' or 'none'")
    return path


def load_pretrained(backbone: nn.Module, spec, weights: str) -> None:
    """Copy the tensors of the weights file that fit ``backbone`` (same name and shape).

    An ImageNet file's 1000-class head does not fit, so the new 2-class head stays random; a 2-class
    HistoGuard state dict fits entirely (fine-tuning from an earlier model).
    """
    path = resolve_weights(spec, weights)
    if path is None:
        return
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelError(f"cannot read weights file {path}: {exc}; it must be a torch state dict") from exc
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    if not isinstance(state, dict):
        raise ModelError(f"weights file {path} does not hold a state dict")
    state = _canonical_keys(state)
    own = backbone.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    # BatchNorm's num_batches_tracked counters are not weights (torchvision's own files predate them) and
    # the head is replaced, so neither counts towards "does this file fit the architecture".
    head = f"{spec.head}." if spec.head else None
    needed = [k for k in own if not k.endswith("num_batches_tracked") and not (head and k.startswith(head))]
    matched = sum(k in usable for k in needed)
    if matched < 0.9 * len(needed):
        raise ModelError(
            f"weights file {path} does not fit {spec.name}: only {matched} of {len(needed)} tensors match; "
            "was it saved from another architecture?"
        )
    backbone.load_state_dict(usable, strict=False)
    log.info("loaded %d tensors of pretrained weights from %s", len(usable), path)


_OLD_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$"
)


def _canonical_keys(state: dict) -> dict:
    """Accept torchvision's original DenseNet key names and state dicts saved from a whole Classifier."""
    out = {}
    for key, value in state.items():
        key = key.removeprefix("backbone.")
        m = _OLD_DENSENET_KEY.match(key)
        out[m.group(1) + m.group(2) if m else key] = value
    return out
