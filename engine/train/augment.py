"""Label-preserving augmentation of a training batch."""

from __future__ import annotations

import torch


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random flips and 90-degree rotations per image: tissue has no up or down, pixels are unchanged."""
    n = x.shape[0]
    draws = torch.randint(0, 8, (n,), generator=generator).tolist()
    out = torch.empty_like(x)
    for i, k in enumerate(draws):
        xi = x[i]
        if k & 4:
            xi = xi.flip(-1)
        out[i] = torch.rot90(xi, k & 3, dims=(-2, -1))
    return out
