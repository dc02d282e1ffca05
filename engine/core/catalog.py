"""The one table of attacks, perturbations and defences: names, labels and what each takes. Torch-free, so the
CLI parser, ``AttackConfig``, the reports and the desktop app read it without importing torch;
``engine.attacks.ATTACKS`` maps the same names to their functions (a test checks that both list the same).
"""

from __future__ import annotations

from dataclasses import dataclass

_GOODFELLOW = "Goodfellow, Shlens & Szegedy, Explaining and Harnessing Adversarial Examples, ICLR 2015"
_KURAKIN = "Kurakin, Goodfellow & Bengio, Adversarial Examples in the Physical World, ICLR workshop 2017"
_MADRY = "Madry et al., Towards Deep Learning Models Resistant to Adversarial Attacks, ICLR 2018"
_CROCE = (
    "Croce & Hein, Reliable Evaluation of Adversarial Robustness with an Ensemble of Diverse Parameter-free "
    "Attacks, ICML 2020"
)
_BASELINE = "none: a non-adversarial baseline (random noise of the same L-inf size)"


@dataclass(frozen=True)
class AttackInfo:
    name: str
    short: str  # "PGD": tables, menus and reports
    label: str  # "PGD (L-inf, random start)": where there is room to say what it is
    kind: str  # "white-box" (gradients of the attacked model) | "baseline" (random noise)
    default_steps: int | None  # None: one shot
    norm: str  # "linf" | "l2"
    random: bool  # draws from the seeded generator
    takes_alpha: bool
    takes_restarts: bool
    paper: str

    @property
    def iterative(self) -> bool:
        return self.default_steps is not None


_TABLE = (  # name, short, label, kind, default steps, norm, random, alpha, restarts, paper
    ("fgsm", "FGSM", "FGSM (L-inf, one step)", "white-box", None, "linf", False, False, False, _GOODFELLOW),
    ("bim", "BIM", "BIM / I-FGSM (L-inf, iterative)", "white-box", 10, "linf", False, True, False, _KURAKIN),
    ("pgd", "PGD", "PGD (L-inf, random start)", "white-box", 10, "linf", True, True, True, _MADRY),
    ("pgd-l2", "PGD-L2", "PGD (L2, random start)", "white-box", 10, "l2", True, True, True, _MADRY),
    ("apgd", "APGD", "APGD (L-inf, adaptive step size)", "white-box", 20, "linf", True, False, True, _CROCE),
    ("uniform-noise", "uniform noise", "Uniform noise (baseline)", "baseline", None, "linf", True, False, False,
     _BASELINE),
    ("sign-noise", "random sign noise", "Random-sign noise (baseline)", "baseline", None, "linf", True, False, False,
     _BASELINE),
)  # fmt: skip
ATTACK_INFO: dict[str, AttackInfo] = {row[0]: AttackInfo(*row) for row in _TABLE}  # in the order menus show them

ATTACK_LABELS = {name: info.short for name, info in ATTACK_INFO.items()}
WHITE_BOX = tuple(n for n, i in ATTACK_INFO.items() if i.kind == "white-box")
BASELINES = tuple(n for n, i in ATTACK_INFO.items() if i.kind == "baseline")
ITERATIVE = tuple(n for n, i in ATTACK_INFO.items() if i.iterative)
# The loss a gradient attack climbs (engine.attacks._common): the margin by default, as it does not saturate
LOSS_LABELS = {"margin": "margin (Carlini-Wagner)", "ce": "cross-entropy"}
DEFAULT_LOSS = "margin"
# The row of the robustness table that holds, per image, the worst case over every attack run at one eps
WORST_CASE = "worst-case"
NATURAL_LABELS = {"stain": "H&E stain shift", "blur": "Gaussian blur", "jpeg": "JPEG"}
BLACKBOX_LABELS = {"square": "Square (ONNX, queries only)"}
DEFENCES = ("none", "fgsm-rs", "pgd", "trades", "gaussian")
DEFENCE_LABELS = {
    "none": "none",
    "fgsm-rs": "fast adversarial training (FGSM, random start)",
    "pgd": "PGD adversarial training",
    "trades": "TRADES",
    # Cohen, Rosenfeld & Kolter, Certified Adversarial Robustness via Randomized Smoothing, ICML 2019: trains the
    # base classifier that `histoguard certify` smooths (noise sigma: TrainConfig.noise_sigma)
    "gaussian": "Gaussian noise (randomized smoothing, certifiable)",
}


def attack_label(name: str) -> str:
    """The short label of any attack or perturbation a report can hold ('none' for the clean images)."""
    labels = {"none": "none", WORST_CASE: "worst case", **ATTACK_LABELS, **BLACKBOX_LABELS, **NATURAL_LABELS}
    return labels.get(name, name)


@dataclass(frozen=True)
class ExplainInfo:
    name: str
    label: str  # "Grad-CAM": menus, captions, reports
    torch: bool  # needs the torch model (a checkpoint); False: runs on an ONNX file with onnxruntime only
    shows: str  # what the map means, in one sentence


# Attribution maps ("why this call"): engine.deploy.occlusion (torch-free) and engine.explain (captum)
EXPLAIN_INFO: dict[str, ExplainInfo] = {
    i.name: i
    for i in (
        ExplainInfo("occlusion", "Occlusion", False, "how much the call's probability drops when a patch is blurred"),
        ExplainInfo("gradcam", "Grad-CAM", True, "where the last convolutional block holds evidence for the call"),
        ExplainInfo("ig", "Integrated Gradients", True, "each pixel's share of the call, from a blurred image"),
        ExplainInfo("smoothgrad", "SmoothGrad", True, "the pixels the call is most sensitive to, noise-averaged"),
    )
}
EXPLAIN_METHODS = tuple(EXPLAIN_INFO)
