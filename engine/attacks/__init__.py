"""Adversarial attacks as pure functions on RGB images in [0, 1], with eps in pixel units."""

from engine.attacks.apgd import apgd
from engine.attacks.bim import bim
from engine.attacks.eps import format_eps, parse_eps
from engine.attacks.fgsm import fgsm
from engine.attacks.noise import sign_noise, uniform_noise
from engine.attacks.pgd import pgd
from engine.attacks.registry import ATTACK_INFO, ATTACKS, make_attack

__all__ = [
    "ATTACKS",
    "ATTACK_INFO",
    "apgd",
    "bim",
    "fgsm",
    "format_eps",
    "make_attack",
    "parse_eps",
    "pgd",
    "sign_noise",
    "uniform_noise",
]
