"""argparse types shared by the ``histoguard`` commands: eps values, lists, review bands, names, split ratios."""

from __future__ import annotations

import argparse

from engine.core.eps import parse_eps


def _eps(value: str) -> float:
    from engine.core.errors import ConfigError

    try:
        return parse_eps(value)
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _eps_list(value: str) -> tuple[float, ...]:
    return tuple(_eps(v) for v in value.split(",") if v.strip())


def _band(value: str) -> tuple[float, float]:
    from engine.core.calibration import check_band
    from engine.core.errors import ConfigError

    try:
        return check_band(v for v in value.split(","))
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _names(choices: tuple[str, ...]):
    def parse(value: str) -> tuple[str, ...]:
        names = tuple(v.strip() for v in value.split(",") if v.strip())
        bad = [n for n in names if n not in choices]
        if bad or not names:
            raise argparse.ArgumentTypeError(
                f"unknown {', '.join(bad) or 'empty list'}; choose from {', '.join(choices)}"
            )
        return names

    return parse


def _ratios(value: str) -> tuple[float, float, float]:
    parts = [float(v) for v in value.split(",")]
    if len(parts) != 3:
        raise argparse.ArgumentTypeError("give three ratios train,val,test such as 0.7,0.15,0.15")
    return tuple(parts)  # type: ignore[return-value]
