"""Adversarial attacks as pure functions on RGB images in [0, 1], with eps in pixel units."""

from engine.attacks.apgd import apgd
from engine.attacks.bim import bim
from engine.attacks.fgsm import fgsm
from engine.attacks.noise import sign_noise, uniform_noise
from engine.attacks.pgd import pgd
from engine.attacks.registry import ATTACK_INFO, ATTACKS, attack_from, make_attack

__all__ = [
    "ATTACKS",
    "ATTACK_INFO",
    "apgd",
    "attack_from",
    "bim",
    "fgsm",
    "make_attack",
    "pgd",
    "sign_noise",
    "uniform_noise",
]
