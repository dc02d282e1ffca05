"""Attacks by name (their labels and settings are ``engine.core.catalog``'s table) and ``make_attack``."""

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
from engine.core.catalog import ATTACK_INFO, DEFAULT_LOSS
from engine.core.config import AttackConfig
from engine.core.errors import AttackError, ConfigError

Attack = Callable[..., torch.Tensor]  # attack(model, x, y) -> x_adv

ATTACKS: dict[str, Callable[..., torch.Tensor]] = {
    "fgsm": fgsm,
    "bim": bim,
    "pgd": pgd,
    "pgd-l2": pgd_l2,
    "apgd": apgd,
    "uniform-noise": uniform_noise,
    "sign-noise": sign_noise,
}


def attack_from(cfg: AttackConfig) -> Attack | None:
    """``attack(model, x, y)`` for ``cfg``; None at eps 0 (the clean images: nothing to attack)."""
    if cfg.eps == 0:
        return None
    return make_attack(
        cfg.method, cfg.eps, steps=cfg.steps, alpha=cfg.alpha, restarts=cfg.restarts, seed=cfg.seed,
        targeted=cfg.targeted, loss=cfg.loss,
    )  # fmt: skip


def make_attack(
    name: str,
    eps: Eps,
    *,
    steps: int | None = None,
    alpha: float | None = None,
    restarts: int = 1,
    seed: int = 0,
    targeted: bool = False,
    loss: str = DEFAULT_LOSS,
) -> Attack:
    """``attack(model, x, y)`` for ``name`` at ``eps`` (a float or one value per image), checked now
    (a float eps by ``AttackConfig``, so every caller gets the same messages).

    ``loss``: what a gradient attack climbs, the margin (default) or "ce".
    Defaults: the attack's ``default_steps``; alpha max(eps/4, 1/255) for L-inf, 2.5 * eps / steps for L2.
    Random attacks draw from one ``torch.Generator`` seeded with ``seed``, made here once: the same
    settings give the same sequence of results. Settings an attack does not take are ignored (one form
    can drive every attack; the noise baselines have no target).
    """
    tensor = isinstance(eps, torch.Tensor)
    AttackConfig(name, 0.0 if tensor else eps, steps=steps, alpha=alpha, restarts=restarts, seed=seed, loss=loss)
    info = ATTACK_INFO[name]
    if tensor:
        try:
            check_eps(eps, norm=info.norm)
        except AttackError as exc:
            raise ConfigError(f"{info.label}: {exc}") from None
    steps = info.default_steps if steps is None else steps
    kwargs: dict = {"eps": eps}
    if info.kind == "white-box":
        kwargs.update(targeted=targeted, loss=loss)
    if info.iterative:
        kwargs["steps"] = steps
    if info.takes_alpha:
        kwargs["alpha"] = alpha if alpha is not None else _default_alpha(eps, steps, info.norm)
    if info.takes_restarts:
        kwargs["restarts"] = restarts
    if info.random:
        kwargs["generator"] = torch.Generator().manual_seed(seed)
    return partial(ATTACKS[name], **kwargs)


def _default_alpha(eps: Eps, steps: int, norm: str) -> Eps:
    if norm == "l2":
        return l2_alpha(eps, steps)
    return torch.clamp(eps / 4, min=1 / 255) if isinstance(eps, torch.Tensor) else max(eps / 4, 1 / 255)
