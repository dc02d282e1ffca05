"""The training options of ``histoguard train`` and ``histoguard experiment``: the model and its schedule, the
training levers (EMA of the weights, HED stain jitter, stain normalisation) and the on-the-fly defences with their
tuning (TRADES beta, clean/adversarial mix, AWP). Every option is a ``TrainConfig`` field of the same name; left out,
the field's default holds (the help states it)."""

from __future__ import annotations

import argparse

from engine.cli.arg_types import _eps
from engine.core.catalog import DEFENCES
from engine.core.config import STAIN_METHODS

ARCHS = ("densenet121", "resnet18", "mobilenet_v3_small", "small_cnn")
LEVER_FIELDS = ("ema_decay", "hed_scale", "hed_shift", "awp_gamma", "awp_warmup", "stain_norm", "stain_reference")


def add_train_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training")
    g.add_argument("--arch", choices=ARCHS, help="model architecture (default densenet121, the study's)")
    g.add_argument("--image-size", type=int, help="square input size in pixels (default 224)")
    g.add_argument(
        "--input-mpp",
        type=float,
        help="microns per pixel of the model's input (training images after resizing); stored with the model so "
        "`histoguard slide` tiles slides at the same scale",
    )
    g.add_argument("--epochs", type=int)
    g.add_argument("--batch-size", type=int)
    g.add_argument("--lr", type=float, help="peak learning rate of AdamW")
    g.add_argument("--patience", type=int, help="early stopping: epochs without validation improvement")
    g.add_argument(
        "--weights", help="'auto' (ImageNet from the torch cache if present), 'imagenet', 'none' or a .pth file"
    )
    g.add_argument("--device", help="auto (default), cpu, cuda or cuda:N")
    g.add_argument(
        "--precision",
        choices=("auto", "fp32", "bf16"),
        help="auto (default): bf16 mixed precision on GPUs and on CPUs with native bf16, else fp32",
    )
    g.add_argument("--seed", type=int)
    g.add_argument(
        "--eps", type=_eps, help="FGSM eps in pixel units, e.g. 2/255 or 0.0078 (default 4/255; 8/255 with --demo)"
    )
    add_lever_options(g)


def add_lever_options(g) -> None:
    """The levers every training can take, recorded in the model's 'how trained'."""
    g.add_argument(
        "--ema-decay", type=float, metavar="D",
        help="keep an exponential moving average of the weights (BatchNorm statistics too, with warm-up) and "
        "validate, select, save and export it instead of the raw weights; e.g. 0.999 (default 0 = off)",
    )  # fmt: skip
    g.add_argument(
        "--hed-scale", type=float, metavar="S",
        help="HED stain jitter in training (Tellez et al. 2018): each image's haematoxylin, eosin and DAB "
        "concentrations times U(1-S, 1+S); e.g. 0.05 (default 0 = off)",
    )  # fmt: skip
    g.add_argument(
        "--hed-shift", type=float, metavar="B",
        help="HED stain jitter: plus U(-B, B) in optical-density units; e.g. 0.05 (default 0 = off)",
    )  # fmt: skip
    add_stain_options(g)


def add_stain_options(g) -> None:
    g.add_argument(
        "--stain-norm", choices=STAIN_METHODS,
        help="stain normalisation of every image before the model (train, validation and test images, and wherever "
        "the model runs later: it is recorded in the model): macenko (haematoxylin/eosin vectors) or reinhard "
        "(CIELAB mean and spread); the reference is fitted on the training images unless --stain-reference gives "
        "one (default none)",
    )  # fmt: skip
    g.add_argument(
        "--stain-reference", metavar="IMAGE",
        help="an image whose stain is the reference of --stain-norm (default: fitted on the training split)",
    )  # fmt: skip


def add_defence_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("adversarial training")
    g.add_argument(
        "--adversarial",
        choices=DEFENCES,
        help="on-the-fly adversarial training: fgsm-rs (fast, random start), pgd, trades, or gaussian (noise for "
        "randomized smoothing, see `histoguard certify`) (default none)",
    )
    add_sigma_option(g)
    g.add_argument("--adv-eps", type=_eps, help="eps of the training attack (default 8/255)")
    add_adversarial_tuning(g)


def add_adversarial_tuning(g) -> None:
    """How an on-the-fly defence trains (``histoguard train --adversarial``, the experiment's Model C)."""
    g.add_argument("--adv-steps", type=int, help="attack steps of pgd/trades training (default 7)")
    g.add_argument(
        "--adv-ratio", type=float,
        help="fraction of each batch made adversarial, drawn at random class by class (default 1.0)",
    )  # fmt: skip
    g.add_argument("--trades-beta", type=float, help="TRADES robustness weight (default 6)")
    g.add_argument(
        "--awp-gamma", type=float, metavar="GAMMA",
        help="adversarial weight perturbation (Wu et al. 2020) of fgsm-rs/pgd/trades training: each layer's "
        "weights moved by GAMMA of their norm up the adversarial loss for every step; the paper's 0.005 "
        "(default 0 = off)",
    )  # fmt: skip
    g.add_argument("--awp-warmup", type=int, metavar="EPOCHS", help="epochs trained before AWP starts (default 0)")


def add_sigma_option(g) -> None:
    g.add_argument(
        "--sigma", type=float, dest="noise_sigma",
        help="gaussian: noise standard deviation on [0, 1] images, recorded with the model (default 0.25)",
    )  # fmt: skip
