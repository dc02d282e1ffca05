"""H&E stain maths in one place: colour deconvolution into haematoxylin, eosin and DAB concentrations and back
(Ruifrok & Johnston, 2001, the matrices of ``skimage.color.rgb2hed``), and the per-image random scale and shift
of those concentrations (Tellez et al., 2018, "HED augmentation").

Two users: the evaluation's natural stain shift (``engine.attacks.natural.stain_shift``) and the training's HED
jitter (``hed_jitter``, switched on by ``TrainConfig.hed_scale`` / ``hed_shift``).

Concentrations are in optical-density units, natural log: ``od = -ln(max(rgb, 1e-6))``, ``stains = od @
HED_FROM_RGB``. (skimage also divides by ln(1e-6), about -13.8, and clips negative concentrations; neither is done
here, so the round trip is the identity.) A scale of the concentrations leaves white (od 0) white; a shift tints
every pixel, the background too. Pure functions on RGB batches (N, 3, H, W) in [0, 1]: the input is not modified,
the result has its shape, dtype and device and lies in [0, 1]; the maths runs in float64.
"""

from __future__ import annotations

import torch

from engine.core.config import check_hed_jitter

# rows = optical density (R, G, B) of haematoxylin, eosin and DAB: the matrix of skimage.color.rgb2hed
RGB_FROM_HED = torch.tensor([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]], dtype=torch.float64)
HED_FROM_RGB = torch.linalg.inv(RGB_FROM_HED)
MIN_RGB = 1e-6  # as skimage: log(0) is avoided by flooring intensities


def rgb_to_hed(x: torch.Tensor) -> torch.Tensor:
    """Stain concentrations (N, H, W, 3: haematoxylin, eosin, DAB; float64, optical-density units) of ``x``."""
    od = -torch.log(x.detach().to(torch.float64).clamp_min(MIN_RGB)).permute(0, 2, 3, 1)  # N, H, W, RGB
    return od @ HED_FROM_RGB.to(x.device)


def hed_to_rgb(stains: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """RGB images (N, 3, H, W) in [0, 1] of ``dtype`` from concentrations as ``rgb_to_hed`` gives them."""
    od = stains @ RGB_FROM_HED.to(stains.device)
    return torch.exp(-od).permute(0, 3, 1, 2).clamp(0, 1).to(dtype).contiguous()


def scale_and_shift(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``x`` with each image's stain concentrations multiplied by ``scale`` and moved by ``shift`` ((N, 3) or
    broadcastable to (N, 1, 1, 3): one factor and one offset per image and stain)."""
    n = x.shape[0]
    scale, shift = (t.to(x.device, torch.float64).reshape(n, 1, 1, 3) for t in (scale, shift))
    return hed_to_rgb(rgb_to_hed(x) * scale + shift, x.dtype)


def uniform(shape: tuple[int, ...], low: float, high: float, generator: torch.Generator | None) -> torch.Tensor:
    """U(low, high) draws in float64 on the generator's device (the CPU without one)."""
    device = generator.device if generator is not None else torch.device("cpu")
    u = torch.rand(shape, generator=generator, device=device, dtype=torch.float64)
    return low + (high - low) * u


def hed_jitter(x: torch.Tensor, *, scale: float, shift: float, generator: torch.Generator | None = None):
    """Tellez et al.'s HED augmentation: per image and stain, concentration * alpha + beta with alpha ~ U(1 -
    ``scale``, 1 + ``scale``) and beta ~ U(-``shift``, ``shift``) (optical-density units), drawn from ``generator``.
    Only colours change: each pixel's new colour depends on its old colour and its image's draw alone."""
    check_hed_jitter(scale, shift)
    n = x.shape[0]
    alpha = uniform((n, 3), 1 - scale, 1 + scale, generator)
    beta = uniform((n, 3), -shift, shift, generator)
    return scale_and_shift(x, alpha, beta)
