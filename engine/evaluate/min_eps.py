"""Per-image robustness: the smallest eps (in whole 1/255 steps) at which white-box PGD flips the prediction.

A batched bisection over k/255 for k in 1..``max_k``: every image carries its own eps, so each bisection
step is one PGD run over the set. PGD is not exactly monotone in eps, so the result is the bisection's
answer (an upper bound found by a real attack, tight to one grey level where PGD is monotone). An image counts
as flipped when its 8-bit adversarial image (what a PNG holds, the rule of every evaluation) is misclassified.
Images misclassified without attack get 0; images that PGD cannot flip at ``max_k``/255 get None.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from engine.attacks import pgd
from engine.attacks.perturbation import quantised
from engine.core.progress import CancelToken, ProgressCallback, check_cancel, report
from engine.data.arrays import ArraySet, batches
from engine.models.tensors import to_tensor


def minimal_eps(
    model: nn.Module,
    data: ArraySet,
    device: torch.device,
    *,
    max_k: int = 16,
    steps: int = 10,
    seed: int = 0,
    batch_size: int = 64,
    name: str = "model",
    loss: str = "margin",
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> list[float | None]:
    """Minimal flipping eps of each image of ``data`` in pixel units (k/255), 0 or None as described above."""
    model.eval()
    stage = f"minimal eps of {name}"
    out: list[float | None] = []
    n = len(data)
    for b, idx in enumerate(batches(n, batch_size), start=1):
        check_cancel(cancel, stage)
        x = to_tensor(data.images[idx], device)
        y = torch.from_numpy(data.labels[idx]).to(device)
        out += _bisect(model, x, y, max_k, steps, torch.Generator().manual_seed(seed + b), loss)
        report(on_progress, stage, min(b * batch_size, n), n, unit="images")
    return out


def _flipped(model, x, y, k: torch.Tensor, steps: int, gen, loss: str) -> torch.Tensor:
    eps = k.to(x.dtype) / 255
    x_adv = pgd(
        model, x, y, eps=eps, alpha=eps * 2.5 / steps, steps=steps, random_start=True, generator=gen, early_stop=True,
        loss=loss,
    )  # fmt: skip
    with torch.no_grad():
        return model(quantised(x_adv)).argmax(1) != y


def _bisect(model, x, y, max_k: int, steps: int, gen, loss: str) -> list[float | None]:
    with torch.no_grad():
        wrong = model(x).argmax(1) != y
    lo = torch.zeros(len(x), dtype=torch.long, device=x.device)  # not flipped at lo (clean is correct)
    hi = torch.full_like(lo, max_k)  # flipped at hi (checked first)
    never = ~_flipped(model, x, y, hi, steps, gen, loss) & ~wrong
    lo = torch.where(never | wrong, hi, lo)  # nothing to search for these
    while bool(((hi - lo) > 1).any()):
        act = (hi - lo > 1).nonzero().squeeze(1)  # only the images still being searched are attacked
        mid = (lo[act] + hi[act]) // 2
        flip = _flipped(model, x[act], y[act], mid, steps, gen, loss)
        hi[act] = torch.where(flip, mid, hi[act])
        lo[act] = torch.where(flip, lo[act], mid)
    return [0.0 if w else None if nv else h / 255 for w, nv, h in zip(wrong.tolist(), never.tolist(), hi.tolist())]


def min_eps_summary(values: list[float | None], max_k: int) -> dict:
    """Median, quartiles and a histogram over k/255 (with 'not flipped' counted apart) for the report."""
    k = [None if v is None else round(v * 255) for v in values]
    flipped = np.array([v for v in k if v is not None and v > 0], dtype=float)
    finite = np.array([max_k + 1 if v is None else v for v in k], dtype=float)  # 'not flipped' counts as above max
    return {
        "values_255": k,
        "max_k": max_k,
        "median_255": float(np.median(finite)) if len(finite) else None,
        "quartiles_255": [float(q) for q in np.percentile(finite, [25, 75])] if len(finite) else None,
        "misclassified_clean": sum(1 for v in k if v == 0),
        "not_flipped": sum(1 for v in k if v is None),
        "histogram": {str(i): int((flipped == i).sum()) for i in range(1, max_k + 1)},
    }
