"""Natural (non-adversarial) perturbations a lab sees in practice: stain variation, focus blur, JPEG.

Pure functions on RGB batches (N, 3, H, W) in [0, 1]: the input is never modified, the result is a new
tensor of the same shape, dtype and device, clamped to [0, 1]. Random draws come from ``generator``
only (the global RNG is never touched); functions that draw nothing accept it for a uniform signature.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch

from engine.attacks.stain import RGB_FROM_HED, scale_and_shift, uniform
from engine.core.errors import ConfigError, DataError

__all__ = ["NATURAL", "RGB_FROM_HED", "apply_natural", "gaussian_blur", "jpeg", "stain_shift"]

STAIN_SHIFT = 0.05  # additive stain shift in optical-density units per unit of severity (keeps white white)


def _check_images(x: torch.Tensor) -> None:
    if x.ndim != 4 or x.shape[1] != 3:
        raise DataError(f"images must be a (N, 3, H, W) batch, got shape {tuple(x.shape)}")
    if x.numel() and (x.min() < 0 or x.max() > 1):
        raise DataError("images must be RGB in [0, 1]")


def stain_shift(x: torch.Tensor, *, severity: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """H&E stain variation (Tellez et al., 2018, "HED augmentation"; colour deconvolution of Ruifrok &
    Johnston, 2001; the maths in ``engine.attacks.stain``): per image and stain channel, concentration *
    U(1-s, 1+s) + U(-s, s) * STAIN_SHIFT.

    ``severity`` s in [0, 1]; 0 is the identity. Concentrations are in optical-density units, so the
    scale leaves a white (unstained) background white and the small shift only tints it slightly.
    """
    _check_images(x)
    if not 0 <= severity <= 1:
        raise ConfigError(f"stain severity {severity} is outside [0, 1]; try 0.05 (light) to 0.2 (strong)")
    n = x.shape[0]
    scale = uniform((n, 1, 1, 3), 1 - severity, 1 + severity, generator)
    shift = uniform((n, 1, 1, 3), -severity, severity, generator) * STAIN_SHIFT
    return scale_and_shift(x, scale, shift)


def gaussian_blur(x: torch.Tensor, *, sigma: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Out-of-focus scanning: Gaussian blur of standard deviation ``sigma`` pixels (0 is the identity).

    The kernel covers +-3 sigma (odd size), capped so that reflection padding fits inside the image.
    """
    from torchvision.transforms.v2 import functional as TF

    _check_images(x)
    if not 0 <= sigma <= 20:
        raise ConfigError(f"blur sigma {sigma} must be in [0, 20] pixels; try 0.5 to 2")
    if sigma == 0:
        return x.detach().clone()
    half = max(1, min(math.ceil(3 * sigma), min(x.shape[-2:]) - 1))
    return TF.gaussian_blur(x.detach(), kernel_size=[2 * half + 1] * 2, sigma=[float(sigma)] * 2).clamp(0, 1)


def jpeg(x: torch.Tensor, *, quality: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A real JPEG round trip (libjpeg through torchvision.io) at ``quality`` 1-100 of 8-bit images.

    Quality 100 is still lossy (8-bit rounding, chroma subsampling) but close to the input.
    """
    from torchvision.io import ImageReadMode, decode_jpeg, encode_jpeg

    _check_images(x)
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ConfigError(f"JPEG quality {quality!r} must be an integer in 1..100; try 90, 70 or 50")
    if x.shape[0] == 0:
        return x.detach().clone()
    images = x.detach().cpu().mul(255).round_().clamp_(0, 255).to(torch.uint8)
    encoded = encode_jpeg(list(images), quality=quality)
    decoded = decode_jpeg(encoded, mode=ImageReadMode.RGB)
    return torch.stack(decoded).to(x.device, x.dtype).div_(255)


class Natural(NamedTuple):
    function: Callable[..., torch.Tensor]
    parameter: str  # the keyword the level is passed as
    levels: tuple  # default levels, mild to strong
    label: str


NATURAL: dict[str, Natural] = {
    "stain": Natural(stain_shift, "severity", (0.05, 0.1, 0.2), "H&E stain variation"),
    "blur": Natural(gaussian_blur, "sigma", (0.5, 1.0, 2.0), "Gaussian blur (focus)"),
    "jpeg": Natural(jpeg, "quality", (90, 70, 50), "JPEG compression"),
}


def apply_natural(name: str, x: torch.Tensor, level: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """``NATURAL[name]`` at ``level`` (its severity, sigma or quality); ConfigError for unknown names or levels."""
    if name not in NATURAL:
        raise ConfigError(f"unknown natural perturbation {name!r}; choose one of {', '.join(NATURAL)}")
    spec = NATURAL[name]
    if isinstance(level, bool) or not isinstance(level, (int, float)) or not math.isfinite(level):
        raise ConfigError(f"{spec.label}: {spec.parameter} {level!r} is not a number")
    if name == "jpeg":
        if level != int(level):
            raise ConfigError(f"JPEG quality {level!r} must be an integer in 1..100")
        level = int(level)
    return spec.function(x, **{spec.parameter: level}, generator=generator)
