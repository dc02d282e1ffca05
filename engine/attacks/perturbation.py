"""What an evaluation does to each batch of a labelled set: an attack made on one model's gradients, random noise,
a natural perturbation, or nothing; and the batch loop that applies it (images to the device, labels or a
target, rounding to 8 bits, progress and cancel between batches). The evaluation core (``engine.evaluate.core``)
and the study's merged training set (``engine.train.study``) both go through it.

One rule for adversarial images: every perturbed image that is evaluated, shown or saved is the 8-bit image a
PNG can hold (``quantised``), so the experiment's tables, the minimal-eps search, the Stress page, ``histoguard
attack`` and the slide maps all judge the same images and their numbers agree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from engine.attacks._common import quantised
from engine.attacks.natural import apply_natural
from engine.attacks.registry import attack_from
from engine.core.config import AttackConfig
from engine.core.eps import format_eps
from engine.core.progress import CancelToken, ProgressCallback, check_cancel, report
from engine.data.arrays import ArraySet, batches
from engine.models.tensors import to_tensor, to_uint8

__all__ = ["CLEAN", "Perturbation", "adversarial_images", "perturbed_batches", "quantised"]

Perturb = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x, y) -> perturbed x, on the device


@dataclass(frozen=True)
class Perturbation:
    """What is done to each batch: ``attack`` made on model ``source`` (None: noise needs no model), or the
    natural perturbation ``natural`` = (name, level), or nothing (clean). ``target``: the class index a
    targeted attack pulls every image towards (else the images' own labels are attacked). Perturbed images are
    always rounded to 8 bits, as a saved PNG holds them."""

    attack: AttackConfig | None = None
    source: str | None = None
    natural: tuple[str, float] | None = None
    target: int | None = None
    seed: int = 0  # of the natural perturbation's random draws

    @property
    def key(self) -> tuple:
        """Equal for perturbations that give the same images (an attack's unused settings do not count)."""
        attack = None if self.attack is None or self.attack.eps == 0 else self.attack.canonical()
        source = self.source if attack is not None and attack.info.kind == "white-box" else None
        natural = None if self.natural is None else (*self.natural, self.seed)
        return (attack, source, natural, self.target if attack is not None else None)

    def describe(self) -> str:
        if self.natural is not None:
            return f"{self.natural[0]} {self.natural[1]:g}"
        if self.key[0] is None:
            return "clean images"
        on = f" on {self.source}" if self.key[1] else ""
        return f"{self.attack.method}{on} at {format_eps(self.attack.eps)}"


CLEAN = Perturbation()


def perturbed_batches(
    data: ArraySet,
    perturbation: Perturbation,
    models: dict[str, nn.Module],
    device: torch.device,
    batch_size: int = 64,
    stage: str = "evaluate",
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
    """(indices, perturbed images on ``device``) batch by batch; progress in images, cancel between batches."""
    perturb = _perturb_fn(perturbation, models)
    n = len(data)
    for b, idx in enumerate(batches(n, batch_size), start=1):
        check_cancel(cancel, stage)
        x = to_tensor(data.images[idx], device)
        if perturb is not None:
            if perturbation.target is None:
                y = torch.from_numpy(data.labels[idx])
            else:
                y = torch.full((len(idx),), perturbation.target, dtype=torch.long)
            x = quantised(perturb(x, y.to(device)))
        yield idx, x
        report(on_progress, stage, min(b * batch_size, n), n, unit="images")


def _perturb_fn(p: Perturbation, models: dict[str, nn.Module]) -> Perturb | None:
    if p.natural is not None:
        name, level = p.natural
        generator = torch.Generator().manual_seed(p.seed)
        return lambda x, y: apply_natural(name, x, level, generator=generator)
    attack = attack_from(p.attack) if p.attack is not None else None
    if attack is None:
        return None
    source = models[p.source] if p.source is not None else None
    return lambda x, y: attack(source, x, y)


def adversarial_images(
    source: nn.Module,
    data: ArraySet,
    attack: AttackConfig,
    device: torch.device,
    batch_size: int = 64,
    stage: str = "attack",
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> ArraySet:
    """Adversarial copies of ``data`` made on ``source``, stored as the 8-bit images ``perturbed_batches`` gives."""
    out = np.empty_like(data.images)
    perturbation = Perturbation(attack, "source")
    for idx, x in perturbed_batches(
        data, perturbation, {"source": source}, device, batch_size, stage, on_progress, cancel
    ):
        out[idx] = to_uint8(x)
    return ArraySet(out, data.labels.copy(), None if data.patients is None else data.patients.copy())
