"""Names and labels of the attacks, perturbations and defences, torch-free: the CLI parser, the reports and
the desktop app list them without importing torch. ``engine.attacks.ATTACKS`` holds the functions; a
test checks that both list the same attacks."""

from __future__ import annotations

# name -> short label, in the order menus show them
ATTACK_LABELS = {
    "fgsm": "FGSM",
    "bim": "BIM",
    "pgd": "PGD",
    "pgd-l2": "PGD-L2",
    "apgd": "APGD-CE",
    "uniform-noise": "uniform noise",
    "sign-noise": "random sign noise",
}
WHITE_BOX = ("fgsm", "bim", "pgd", "pgd-l2", "apgd")
BASELINES = ("uniform-noise", "sign-noise")
ITERATIVE = ("bim", "pgd", "pgd-l2", "apgd")
NATURAL_LABELS = {"stain": "H&E stain shift", "blur": "Gaussian blur", "jpeg": "JPEG"}
BLACKBOX_LABELS = {"square": "Square (ONNX, queries only)"}
DEFENCES = ("none", "fgsm-rs", "pgd", "trades")
DEFENCE_LABELS = {
    "none": "none",
    "fgsm-rs": "fast adversarial training (FGSM, random start)",
    "pgd": "PGD adversarial training",
    "trades": "TRADES",
}
