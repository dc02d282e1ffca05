"""Epsilon in pixel units: "2/255", "0.0078" or 2/255 as a float. Torch-free: the CLI parser and the app use it."""

from __future__ import annotations

from fractions import Fraction

from engine.core.errors import ConfigError


def parse_eps(value: str | float) -> float:
    """'2/255' -> 0.00784..., '0.0078' -> 0.0078; refuses values outside [0, 1]."""
    try:
        eps = float(Fraction(value.strip())) if isinstance(value, str) else float(value)
    except (ValueError, ZeroDivisionError):
        raise ConfigError(f"eps {value!r} is not a number; write it like 2/255 or 0.0078") from None
    if not 0 <= eps <= 1:
        raise ConfigError(f"eps {value!r} is outside [0, 1]; images are in [0, 1], so 8/255 is a large attack")
    return eps


def format_eps(eps: float) -> str:
    """0.0078431 -> '2/255'; values that are not k/255 are printed as decimals."""
    k = eps * 255
    return f"{round(k)}/255" if abs(k - round(k)) < 1e-6 else f"{eps:.4g}"
