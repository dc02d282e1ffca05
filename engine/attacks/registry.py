"""Attacks by name, what UIs and reports need to show them, and ``make_attack`` for a ready-to-call attack."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch

from engine.attacks._common import Eps, check_eps
from engine.attacks.apgd import apgd
from engine.attacks.bim import bim
from engine.attacks.fgsm import fgsm
from engine.attacks.noise import sign_noise, uniform_noise
from engine.attacks.pgd import l2_alpha, pgd, pgd_l2
from engine.errors import AttackError, ConfigError

ATTACKS: dict[str, Callable[..., torch.Tensor]] = {
    "fgsm": fgsm,
    "bim": bim,
    "pgd": pgd,
    "pgd-l2": pgd_l2,
    "apgd": apgd,
    "uniform-noise": uniform_noise,
    "sign-noise": sign_noise,
}

_GOODFELLOW = "Goodfellow, Shlens & Szegedy, Explaining and Harnessing Adversarial Examples, ICLR 2015"
_KURAKIN = "Kurakin, Goodfellow & Bengio, Adversarial Examples in the Physical World, ICLR workshop 2017"
_MADRY = "Madry et al., Towards Deep Learning Models Resistant to Adversarial Attacks, ICLR 2018"
_CROCE = (
    "Croce & Hein, Reliable Evaluation of Adversarial Robustness with an Ensemble of Diverse Parameter-free "
    "Attacks, ICML 2020"
)
_BASELINE = "none: a non-adversarial baseline (random noise of the same L-inf size)"
_TABLE = [  # name, label, kind, default_steps (None: one shot), norm, random (uses the seed), paper
    ("fgsm", "FGSM (L-inf, one step)", "white-box", None, "linf", False, _GOODFELLOW),
    ("bim", "BIM / I-FGSM (L-inf, iterative)", "white-box", 10, "linf", False, _KURAKIN),
    ("pgd", "PGD (L-inf, random start)", "white-box", 10, "linf", True, _MADRY),
    ("pgd-l2", "PGD (L2, random start)", "white-box", 10, "l2", True, _MADRY),
    ("apgd", "APGD-CE (L-inf, adaptive step size)", "white-box", 20, "linf", True, _CROCE),
    ("uniform-noise", "Uniform noise (baseline)", "baseline", None, "linf", True, _BASELINE),
    ("sign-noise", "Random-sign noise (baseline)", "baseline", None, "linf", True, _BASELINE),
]
ATTACK_INFO: dict[str, dict] = {
    name: dict(
        label=label, kind=kind, iterative=steps is not None, default_steps=steps, norm=norm, paper=paper, random=random
    )
    for name, label, kind, steps, norm, random, paper in _TABLE
}
_TAKES_ALPHA = ("bim", "pgd", "pgd-l2")
_TAKES_RESTARTS = ("pgd", "pgd-l2", "apgd")


def make_attack(
    name: str,
    eps: Eps,
    *,
    steps: int | None = None,
    alpha: float | None = None,
    restarts: int = 1,
    seed: int = 0,
    targeted: bool = False,
) -> Callable[..., torch.Tensor]:
    """``attack(model, x, y)`` for ``name`` at ``eps`` (a float or one value per image), checked now.

    Defaults: the attack's ``default_steps``; alpha max(eps/4, 1/255) for L-inf, 2.5 * eps / steps for L2.
    Random attacks draw from one ``torch.Generator`` seeded with ``seed``, made here once: the same
    settings give the same sequence of results. Settings an attack does not take are ignored (one form
    can drive every attack; the noise baselines have no target).
    """
    if name not in ATTACKS:
        raise ConfigError(f"unknown attack {name!r}; choose one of {', '.join(ATTACKS)}")
    info = ATTACK_INFO[name]
    try:
        check_eps(eps, norm=info["norm"])
    except AttackError as exc:
        raise ConfigError(f"{info['label']}: {exc}") from None
    steps = info["default_steps"] if steps is None else steps
    if (info["iterative"] and steps < 1) or (alpha is not None and not alpha > 0) or restarts < 1:
        raise ConfigError(f"{name} needs steps >= 1, alpha > 0, restarts >= 1 (got {steps}, {alpha}, {restarts})")
    kwargs: dict = {"eps": eps}
    if info["kind"] == "white-box":
        kwargs["targeted"] = targeted
    if info["iterative"]:
        kwargs["steps"] = steps
    if name in _TAKES_ALPHA:
        kwargs["alpha"] = alpha if alpha is not None else _default_alpha(eps, steps, info["norm"])
    if name in _TAKES_RESTARTS:
        kwargs["restarts"] = restarts
    if info["random"]:
        kwargs["generator"] = torch.Generator().manual_seed(seed)
    return partial(ATTACKS[name], **kwargs)


def _default_alpha(eps: Eps, steps: int, norm: str) -> Eps:
    if norm == "l2":
        return l2_alpha(eps, steps)
    return torch.clamp(eps / 4, min=1 / 255) if isinstance(eps, torch.Tensor) else max(eps / 4, 1 / 255)
