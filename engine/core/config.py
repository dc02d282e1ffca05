"""Frozen, validated configuration objects shared by the CLI, the GUI and the run folder."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

from engine.core.catalog import ATTACK_INFO, DEFAULT_LOSS, DEFENCES, LOSS_LABELS
from engine.core.errors import ConfigError, option
from engine.core.intervals import Bootstrap
from engine.core.runtime import PRECISIONS

STAIN_METHODS = ("none", "macenko", "reinhard")  # engine.data.stain_norm.METHODS
DEFAULT_SWEEP = (0.0, 1 / 255, 2 / 255, 4 / 255, 8 / 255)


@dataclass(frozen=True)
class DataConfig:
    data: str | None = None  # folder or CSV; None with demo=True
    demo: bool = False
    positive_class: str = "malignant"
    magnification: str | None = None
    patient_regex: str | None = None
    split_level: str = "patient"
    ratios: tuple[float, float, float] = (0.7, 0.15, 0.15)
    split_seed: int = 0
    split_file: str | None = None

    def __post_init__(self) -> None:
        if not self.demo and not self.data:
            raise ConfigError(f"no dataset given: choose {option('data')} (a folder or CSV) or {option('demo')}")
        if self.split_level not in ("patient", "image"):
            raise ConfigError(f"split level {self.split_level!r} must be 'patient' or 'image'")
        object.__setattr__(self, "ratios", tuple(float(r) for r in self.ratios))


@dataclass(frozen=True)
class TrainConfig:
    arch: str = "densenet121"
    image_size: int = 224
    epochs: int = 20
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    patience: int = 5
    weights: str = "auto"  # 'auto' | 'imagenet' | 'none' | path
    device: str = "auto"
    seed: int = 0
    augment: bool = True
    # mixed precision: 'auto' = bf16 on CUDA (fp16 on GPUs without bf16) and on CPUs with native bf16
    # (AVX512-BF16/AMX), fp32 elsewhere; 'fp32'; 'bf16' (see engine/models/device.py)
    precision: str = "auto"
    # adversarial training (engine/train/defences.py): 'none' | 'fgsm-rs' (fast AT) | 'pgd' | 'trades' |
    # 'gaussian' (noise N(0, noise_sigma^2) in pixel units, not clamped: the base classifier of randomized smoothing)
    adversarial: str = "none"
    adv_eps: float = 8 / 255
    adv_steps: int = 7  # attack steps of 'pgd' and 'trades' training (also the PGD of the robust validation)
    adv_ratio: float = 1.0  # fraction of each batch replaced by its adversarial copy ('fgsm-rs', 'pgd')
    trades_beta: float = 6.0
    # training levers (engine/train/levers.py), all off by default and recorded in the model's "how trained":
    ema_decay: float = 0.0  # EMA of the weights, validated, selected, saved and exported (0 = off; e.g. 0.999)
    hed_scale: float = 0.0  # HED stain jitter: stain concentrations * U(1-s, 1+s) per image (0 = off; e.g. 0.05)
    hed_shift: float = 0.0  # ... + U(-b, b) in optical-density units (0 = off; e.g. 0.05)
    # stain normalisation of every image before the model (engine.data.stain_norm): 'none' | 'macenko' | 'reinhard',
    # to the reference fitted on the training split, or to the image ``stain_reference`` when given; recorded in the
    # model's metadata and applied wherever the model runs
    stain_norm: str = "none"
    stain_reference: str | None = None
    awp_gamma: float = 0.0  # adversarial weight perturbation, fgsm-rs/pgd/trades only (0 = off; the paper's 5e-3)
    awp_warmup: int = 0  # epochs trained without AWP before it starts
    noise_sigma: float = 0.25  # 'gaussian': the noise's standard deviation on [0, 1] images (Cohen et al.'s 0.25)
    # microns per pixel of the model's input (the training images after resizing to image_size), when known:
    # recorded in the model's metadata as "mpp" so `histoguard slide` tiles a slide at the training scale
    input_mpp: float | None = None

    def __post_init__(self) -> None:
        _positive(self, "image_size", "epochs", "batch_size", "lr")
        if self.input_mpp is not None and not 0 < self.input_mpp < 1000:
            raise ConfigError(f"input mpp {self.input_mpp} must be a positive number of microns per pixel")
        if self.adversarial not in DEFENCES:
            choices = ", ".join(DEFENCES)
            raise ConfigError(f"adversarial training {self.adversarial!r} is unknown; choose one of {choices}")
        if not 0 < self.adv_eps <= 1 or not 0 <= self.adv_ratio <= 1:
            raise ConfigError("adversarial training needs 0 < adv_eps <= 1 (e.g. 8/255) and adv_ratio in [0, 1]")
        if not (isinstance(self.noise_sigma, (int, float)) and 0 < self.noise_sigma <= 1):
            raise ConfigError(
                f"noise sigma {self.noise_sigma!r} must be in (0, 1] (pixel units on [0, 1] images, e.g. 0.25)"
            )
        if self.adv_steps < 1 or self.trades_beta < 0:
            raise ConfigError("adv_steps must be at least 1 and trades_beta non-negative")
        self._check_levers()
        if self.image_size < 16:
            raise ConfigError(f"image size {self.image_size} is too small; use at least 16 pixels")
        if self.patience < 1:
            raise ConfigError("patience must be at least 1 epoch")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision {self.precision!r} is unknown; choose one of {', '.join(PRECISIONS)}")

    def _check_levers(self) -> None:
        if not 0 <= self.ema_decay < 1:
            raise ConfigError(f"EMA decay {self.ema_decay} must be in [0, 1): 0 switches it off, 0.999 is usual")
        check_hed_jitter(self.hed_scale, self.hed_shift)
        if self.stain_norm not in STAIN_METHODS:
            raise ConfigError(
                f"stain normalisation {self.stain_norm!r} is unknown; choose one of {', '.join(STAIN_METHODS)}"
            )
        if self.stain_reference and self.stain_norm == "none":
            raise ConfigError(
                "a stain reference image was given without a stain normalisation: choose macenko or reinhard"
            )
        if not 0 <= self.awp_gamma < 1 or self.awp_warmup < 0:
            raise ConfigError(
                f"AWP needs a gamma in [0, 1) (0 = off; the paper's 5e-3) and warm-up epochs >= 0, got "
                f"{self.awp_gamma} and {self.awp_warmup}"
            )


def check_hed_jitter(scale: float, shift: float) -> None:
    """ConfigError unless 0 <= scale < 1 and 0 <= shift <= 1 (the HED jitter's limits)."""
    ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (scale, shift))
    if not (ok and 0 <= scale < 1 and 0 <= shift <= 1):
        raise ConfigError(
            f"HED jitter needs a scale in [0, 1) and a shift in [0, 1] (optical-density units), got {scale!r} and "
            f"{shift!r}; try 0.05 and 0.05 (light) or 0.2 and 0.2 (strong), 0 and 0 to switch it off"
        )


@dataclass(frozen=True)
class AttackConfig:
    """One attack as every part of HistoGuard names it: the stress tests, the experiment, slides and the CLI.

    ``eps`` is in pixel units (k/255 of the [0, 1] range; the L2 radius for pgd-l2). ``steps=None`` is the
    attack's default (``engine.core.catalog``); ``alpha=None`` its default step size. ``target`` is a class
    name: the attack pulls images towards it (targeted); None pushes them away from their label. Settings an
    attack does not take are ignored, so one form can drive every attack (the noise baselines take no target).
    ``loss`` is what a gradient attack climbs: the margin (default; it does not saturate on confident models) or
    cross-entropy ("ce").
    """

    method: str = "fgsm"
    eps: float = 8 / 255
    steps: int | None = None
    alpha: float | None = None
    restarts: int = 1
    seed: int = 0
    target: str | None = None
    loss: str = DEFAULT_LOSS

    def __post_init__(self) -> None:
        if self.method not in ATTACK_INFO:
            raise ConfigError(f"unknown attack {self.method!r}; choose one of {', '.join(ATTACK_INFO)}")
        info = self.info
        high = 1.0 if info.norm == "linf" else math.inf
        if not (isinstance(self.eps, (int, float)) and math.isfinite(self.eps) and 0 <= self.eps <= high):
            hint = "e.g. 2/255" if info.norm == "linf" else "an L2 radius such as 0.5"
            raise ConfigError(f"{info.label}: eps {self.eps} is outside [0, {high:g}]; give it in pixel units, {hint}")
        bad_steps = self.steps is not None and self.steps < 1
        if bad_steps or (self.alpha is not None and not self.alpha > 0) or self.restarts < 1:
            raise ConfigError(
                f"{self.method} needs steps >= 1, alpha > 0, restarts >= 1 (got {self.steps}, {self.alpha}, "
                f"{self.restarts})"
            )
        if self.loss not in LOSS_LABELS:
            raise ConfigError(f"unknown attack loss {self.loss!r}; choose one of {', '.join(LOSS_LABELS)}")
        object.__setattr__(self, "eps", float(self.eps))

    @property
    def info(self):
        return ATTACK_INFO[self.method]

    @property
    def targeted(self) -> bool:
        return self.target is not None and self.info.kind == "white-box"

    @property
    def n_steps(self) -> int:
        """Gradient steps the attack takes (1 for one-shot attacks)."""
        return (self.steps or self.info.default_steps) if self.info.iterative else 1

    @property
    def n_restarts(self) -> int:
        return self.restarts if self.info.takes_restarts and self.n_steps > 1 else 1

    def at(self, eps: float) -> AttackConfig:
        return replace(self, eps=eps)

    def canonical(self) -> AttackConfig:
        """The same attack with the settings it does not take reset: equal attacks compare equal."""
        info = self.info
        return replace(
            self,
            steps=self.n_steps if info.iterative else None,
            alpha=self.alpha if info.takes_alpha else None,
            restarts=self.restarts if info.takes_restarts else 1,
            seed=self.seed if info.random else 0,
            target=self.target if self.targeted else None,
            loss=self.loss if info.kind == "white-box" else DEFAULT_LOSS,
        )

    def describe(self) -> str:
        """'PGD, 10 steps, 3 restarts, targeted towards benign' ('..., cross-entropy loss' when not the margin)."""
        parts = [self.info.short]
        if self.info.iterative:
            parts.append(f"{self.n_steps} steps")
        if self.info.kind == "white-box" and self.loss != DEFAULT_LOSS:
            parts.append(f"{LOSS_LABELS[self.loss]} loss")
        if self.n_restarts > 1:
            parts.append(f"{self.n_restarts} restarts")
        if self.targeted:
            parts.append(f"targeted towards {self.target}")
        return ", ".join(parts)


@dataclass(frozen=True)
class CertifyConfig:
    """Randomized-smoothing certification (``engine.deploy.certify``, Cohen et al.'s CERTIFY): ``n0`` noisy copies
    choose the class, ``n`` more bound its probability at confidence 1 - ``alpha``; noise N(0, ``sigma``^2) in pixel
    units on [0, 1] images (None: the model's own, from its training record), ``batch_size`` noisy copies per
    onnxruntime call, seeded by ``seed``. Measured at 64 px with n 1000 on 2 CPU cores shared with other jobs: about
    0.9 s per image for small_cnn and 8-10 s for DenseNet121 (0.6 and 6.5 s of CPU time); batch sizes from 50 to 100
    were the fastest, larger ones were slower."""

    sigma: float | None = None
    n0: int = 100
    n: int = 1000
    alpha: float = 0.001
    batch_size: int = 100
    seed: int = 0

    def __post_init__(self) -> None:
        if self.sigma is not None and not (isinstance(self.sigma, (int, float)) and 0 < self.sigma <= 1):
            raise ConfigError(f"sigma {self.sigma!r} must be in (0, 1] (pixel units on [0, 1] images, e.g. 0.25)")
        if min(self.n0, self.n, self.batch_size) < 1:
            raise ConfigError(
                f"certification needs n0, n and batch size of at least 1 (got {self.n0}, {self.n}, {self.batch_size})"
            )
        if not 0 < self.alpha < 0.5:
            raise ConfigError(f"alpha {self.alpha} must be in (0, 0.5): the certificate fails with probability alpha")


@dataclass(frozen=True)
class ExperimentConfig:
    data: DataConfig
    train: TrainConfig
    eps: float = 4 / 255  # FGSM size for Model B's training set and the "fgsm" evaluations
    sweep_eps: tuple[float, ...] = DEFAULT_SWEEP
    eval_batch_size: int = 64
    export_onnx: bool = True
    # Model C: trained on the fly with this defence at ``eps`` ('none' = no Model C)
    defence: str = "fgsm-rs"
    # robustness evaluation (engine/evaluate/robustness.py) at every non-zero ``sweep_eps``
    robust_attacks: tuple[str, ...] = ("fgsm", "pgd")
    attack_loss: str = DEFAULT_LOSS  # what the gradient attacks of the evaluation climb: "margin" or "ce"
    pgd_steps: int = 10
    pgd_restarts: int = 1
    min_eps_max: int = 16  # per-image minimal flipping eps searched up to this many /255 (0 = off)
    blackbox_images: int = 50  # Square attack on each exported ONNX model, on this many test images (0 = off)
    blackbox_queries: int = 200
    bootstrap_resamples: int = 1000  # patient-level bootstrap behind every interval (seeded with train.seed)
    # the strong evaluation (engine/evaluate/strong.py): APGD-CE + APGD-margin + Square on a fixed test subset
    strong: bool = False
    strong_images: int = 100
    strong_steps: int = 100
    strong_queries: int = 5000
    # a Model C trained with --defence gaussian is certified (randomized smoothing, CertifyConfig's n, n0, alpha,
    # its own sigma) on its ONNX file, on this many test images (0 = off); n = 1000 costs about 1,100 forward passes
    certified_images: int = 100
    # the report's gallery (engine/workflows/gallery.py): a few right, wrong and attack-flipped test images per
    # model with their Grad-CAM maps and the randomisation check, PNGs under gallery/ (seconds; --no-gallery: off)
    gallery: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.eps <= 1 or any(not 0 <= e <= 1 for e in self.sweep_eps):
            raise ConfigError("eps values must be in (0, 1], in pixel units such as 4/255")
        if self.defence not in DEFENCES:
            raise ConfigError(f"defence {self.defence!r} is unknown; choose one of {', '.join(DEFENCES)}")
        if min(self.strong_images, self.strong_steps, self.strong_queries) < 1:
            raise ConfigError("the strong evaluation needs at least 1 image, 1 APGD step and 1 Square query")
        if self.attack_loss not in LOSS_LABELS:
            raise ConfigError(f"unknown attack loss {self.attack_loss!r}; choose one of {', '.join(LOSS_LABELS)}")
        if self.pgd_steps < 1 or self.pgd_restarts < 1 or self.min_eps_max < 0 or self.blackbox_queries < 1:
            raise ConfigError("pgd_steps, pgd_restarts and blackbox_queries must be at least 1, min_eps_max >= 0")
        if self.certified_images < 0:
            raise ConfigError(f"certified_images must be 0 (off) or more, got {self.certified_images}")
        self.bootstrap()  # at least 10 resamples
        object.__setattr__(self, "robust_attacks", tuple(self.robust_attacks))
        object.__setattr__(self, "sweep_eps", tuple(sorted(set(float(e) for e in self.sweep_eps))))

    def to_dict(self) -> dict:
        return asdict(self)

    def bootstrap(self) -> Bootstrap:
        """The bootstrap behind every interval of a run's report."""
        return Bootstrap(n_resamples=self.bootstrap_resamples, seed=self.train.seed)

    @classmethod
    def from_dict(cls, d: dict) -> ExperimentConfig:
        return cls(
            data=DataConfig(**d["data"]),
            train=TrainConfig(**d["train"]),
            **{k: v for k, v in d.items() if k not in ("data", "train", "histoguard_version")},
        )


def _positive(obj, *names: str) -> None:
    for name in names:
        if getattr(obj, name) <= 0:
            raise ConfigError(f"{name} must be positive, got {getattr(obj, name)}")


def replace_fields(obj, **changes):
    """``dataclasses.replace`` that ignores None values (CLI options left unset)."""
    from dataclasses import replace

    names = {f.name for f in fields(obj)}
    return replace(obj, **{k: v for k, v in changes.items() if v is not None and k in names})


# The demo: the study's DenseNet121 from scratch at 64x64 on the synthetic set, a few minutes on 2 CPU cores.
# input_mpp: the scale of the synthetic demo slide (engine.data.demo_slide), so `histoguard slide` and the
# Slides page tile it right with a demo model.
DEMO_TRAIN = TrainConfig(
    arch="densenet121", image_size=64, epochs=8, batch_size=32, lr=2e-3, patience=4, weights="none", input_mpp=2.628
)
DEMO_EPS = 8 / 255
DEMO_SWEEP = (0.0, 2 / 255, 4 / 255, DEMO_EPS)


def demo_config(**train_changes) -> ExperimentConfig:
    """The demo: the study plus Model C and the robustness table, sized for a few minutes on 2 CPU cores:
    eps 2, 4 and 8 /255 and the Square attack on 30 test images. The per-image minimal-eps search is left to
    ``histoguard experiment`` and ``python -m bench.robustness``."""
    return ExperimentConfig(
        data=DataConfig(demo=True),
        train=replace_fields(DEMO_TRAIN, **train_changes),
        eps=DEMO_EPS,
        sweep_eps=DEMO_SWEEP,
        min_eps_max=0,
        blackbox_images=30,
    )
