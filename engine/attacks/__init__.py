"""Adversarial attacks as pure functions on RGB images in [0, 1], with eps in pixel units."""

from engine.attacks.eps import format_eps, parse_eps
from engine.attacks.fgsm import fgsm
from engine.attacks.pgd import pgd

ATTACKS = {"fgsm": fgsm, "pgd": pgd}

__all__ = ["ATTACKS", "fgsm", "format_eps", "parse_eps", "pgd"]
