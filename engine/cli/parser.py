"""argparse definitions of the ``histoguard`` commands."""

from __future__ import annotations

import argparse
from dataclasses import fields

from engine import __version__
from engine.cli.arg_types import _band, _eps, _eps_list, _names, _ratios
from engine.cli.certify_options import add_certify_options
from engine.cli.cohort import add_cohort_command
from engine.cli.explain import add_explain_command
from engine.cli.slide_cmd import add_tile_options
from engine.cli.train_options import (  # noqa: F401  (ARCHS re-exported)
    ARCHS,
    add_adversarial_tuning,
    add_defence_options,
    add_sigma_option,
    add_train_options,
)
from engine.core.catalog import ATTACK_LABELS, DEFAULT_LOSS, DEFENCES, LOSS_LABELS
from engine.core.config import ExperimentConfig

ATTACK_NAMES, DEFENCE_NAMES = tuple(ATTACK_LABELS), DEFENCES


def add_data_options(p: argparse.ArgumentParser, required: bool = True) -> None:
    g = p.add_argument_group("data")
    src = g.add_mutually_exclusive_group(required=required)
    src.add_argument(
        "--data", help="dataset folder (BreakHis tree, class folders) or CSV manifest path,label[,patient_id]"
    )
    src.add_argument("--demo", action="store_true", help="use the built-in SYNTHETIC demo dataset")
    g.add_argument(
        "--positive-class", default="malignant", help="the disease class of a two-class set (default: malignant)"
    )
    g.add_argument("--magnification", help="keep only one magnification (40X, 100X, 200X, 400X)")
    g.add_argument("--patient-regex", help="regex whose first group is the patient id in a file name")
    g.add_argument(
        "--split-level",
        choices=("patient", "image"),
        default="patient",
        help="patient (default) or image (leaks patients between splits; only to reproduce old studies)",
    )
    g.add_argument("--split-ratios", type=_ratios, default=(0.7, 0.15, 0.15), metavar="TRAIN,VAL,TEST")
    g.add_argument("--split-seed", type=int, default=0)
    g.add_argument(
        "--split-file",
        help="re-use the split.csv of an earlier run (at --split-level patient it must keep each patient in one "
        "split; an image-level file needs --split-level image)",
    )


def add_attack_options(g) -> None:
    """The white-box attacks of a robustness evaluation (``experiment`` and ``evaluate``)."""
    g.add_argument(
        "--attacks", type=_names(ATTACK_NAMES), help="white-box attacks of the robustness table (default fgsm,pgd)"
    )
    g.add_argument("--pgd-steps", type=int, help="steps of PGD/BIM/APGD (default 10)")
    g.add_argument("--pgd-restarts", type=int, help="random restarts of PGD/APGD (default 1)")
    add_loss_option(g, "--attack-loss")


def add_strong_options(g) -> None:
    g.add_argument(
        "--strong",
        action="store_true",
        help="also run the strong evaluation for a model you mean to deploy: APGD-CE + APGD-margin "
        f"({_experiment_default('strong_steps')} steps each) + Square ({_experiment_default('strong_queries')} "
        f"queries) on {_experiment_default('strong_images')} test images at --eps, worst case per image (slow)",
    )
    g.add_argument(
        "--strong-images",
        type=int,
        help="test images of the strong evaluation, a fixed random subset "
        f"(default {_experiment_default('strong_images')})",
    )
    g.add_argument(
        "--strong-steps",
        type=int,
        help=f"APGD steps of the strong evaluation, per loss (default {_experiment_default('strong_steps')})",
    )
    g.add_argument(
        "--strong-queries",
        type=int,
        help=f"Square queries per image of the strong evaluation (default {_experiment_default('strong_queries')})",
    )


def add_loss_option(g, flag: str = "--loss", default: str | None = None) -> None:
    g.add_argument(
        flag,
        choices=tuple(LOSS_LABELS),
        default=default,
        help="what gradient attacks climb: margin (default; it does not saturate on confident models, so no false "
        "robustness) or ce (cross-entropy, the papers' loss)",
    )


def add_robustness_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("robustness evaluation")
    g.add_argument(
        "--defence",
        choices=DEFENCE_NAMES,
        help="train Model C with this on-the-fly adversarial training at --eps, or gaussian at --sigma "
        "(default fgsm-rs; none = no Model C)",
    )
    add_sigma_option(g)
    add_attack_options(g)
    add_strong_options(g)
    g.add_argument("--min-eps-max", type=int, help="search each image's flipping eps up to this many /255 (0 = off)")
    g.add_argument(
        "--blackbox-images",
        type=int,
        help=f"test images for the Square attack on ONNX (default {_experiment_default('blackbox_images')}; 0 = off)",
    )
    g.add_argument(
        "--blackbox-queries",
        type=int,
        help=f"queries per image of the Square attack (default {_experiment_default('blackbox_queries')})",
    )
    g.add_argument(
        "--certified-images", type=int,
        help="with --defence gaussian: test images Model C's ONNX file is certified on (randomized smoothing, about "
        f"1,100 forward passes each; default {_experiment_default('certified_images')}; 0 = off)",
    )  # fmt: skip
    g.add_argument(
        "--bootstrap", type=int, help="patient-level bootstrap resamples behind every 95%% interval (default 1000)"
    )
    g.add_argument(
        "--no-gallery", dest="gallery", action="store_false", default=None,
        help="leave out the report's gallery (a few right, wrong and attack-flipped test images per model with "
        "their Grad-CAM maps; seconds)",
    )  # fmt: skip


def _experiment_default(name: str):
    """ExperimentConfig's default of ``name``: what the experiment (and the demo) use when the option is left out,
    so the help cannot state another number."""
    return next(f.default for f in fields(ExperimentConfig) if f.name == name)


def add_run_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("run folder")
    g.add_argument("--force", action="store_true", help="replace an existing run in --out")
    g.add_argument("--resume", action="store_true", help="continue an interrupted run in --out from its checkpoints")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="histoguard",
        description=(
            "HistoGuard: train, attack, harden and export breast-histopathology classifiers, offline. "
            "Without a command it opens the desktop app."
        ),
    )
    parser.add_argument("--version", action="version", version=f"histoguard {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    parser.add_argument("-v", "--verbose", action="store_true", help="show informational logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_study_commands(sub)
    _add_models_commands(sub)
    _add_deploy_commands(sub)
    return parser


def _add_study_commands(sub) -> None:
    """The study: the demo, the whole experiment, and the synthetic data and slide to try it on."""
    p = sub.add_parser("demo", help="the whole study on the built-in synthetic dataset (minutes on a CPU)")
    p.add_argument("--out", default="runs/demo", help="run folder (default runs/demo)")
    p.add_argument("--device", default="auto")
    add_run_options(p)

    p = sub.add_parser("experiment", help="train A, FGSM, train B, evaluate, export ONNX, report")
    add_data_options(p)
    add_train_options(p)
    p.add_argument(
        "--sweep-eps", type=_eps_list, help="comma-separated eps list for the sweep (default 0,1,2,4,8 /255)"
    )
    p.add_argument("--no-onnx", action="store_true", help="skip the ONNX export")
    p.add_argument(
        "--folds", type=int, metavar="K", help="patient-level K-fold cross-validation: K run folders and cv.md in --out"
    )
    add_adversarial_tuning(p.add_argument_group("Model C's adversarial training (at --eps, defence --defence)"))
    add_robustness_options(p)
    p.add_argument("--out", required=True, help="run folder")
    add_run_options(p)

    p = sub.add_parser("demo-data", help="write the synthetic demo dataset (BreakHis-style names)")
    p.add_argument("out")
    p.add_argument("--patients-per-class", type=int, default=40)
    p.add_argument("--images-per-patient", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("demo-slide", help="write a SYNTHETIC whole-slide image (tiled pyramidal TIFF) to try slides")
    p.add_argument("out", help="the .tiff file to write")
    p.add_argument("--side", type=int, default=20000, help="width and height in pixels (default 20,000)")
    p.add_argument("--seed", type=int, default=0)


def _add_models_commands(sub) -> None:
    """One model at a time (full edition): train, evaluate, attack and export a checkpoint."""
    p = sub.add_parser("train", help="train one model (clean, or --adversarial-from CKPT for the study's Model B)")
    add_data_options(p)
    add_train_options(p)
    p.add_argument("--adversarial-from", help="checkpoint whose FGSM images are merged into the training set")
    add_defence_options(p)
    p.add_argument("--out", required=True, help="output folder")
    add_run_options(p)

    p = sub.add_parser(
        "evaluate", help="clean metrics and the robustness evaluation (FGSM, PGD, worst case) of a checkpoint"
    )
    p.add_argument("--model", required=True, help="checkpoint (.pt) from a HistoGuard run")
    add_data_options(p)
    p.add_argument("--split", choices=("train", "val", "test", "all"), default="test")
    p.add_argument("--eps", type=_eps, default=4 / 255, help="eps of the study's FGSM conditions (default 4/255)")
    p.add_argument("--sweep-eps", type=_eps_list, help="eps of the robustness evaluation (default 0,1,2,4,8 /255)")
    g = p.add_argument_group("robustness evaluation")
    add_attack_options(g)
    add_strong_options(g)
    g.add_argument("--bootstrap", type=int, help="patient-level bootstrap resamples (default 1000)")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", help="write the results as JSON here")

    p = sub.add_parser("attack", help="write adversarial PNGs of images or folders")
    p.add_argument("--model", required=True, help="checkpoint (.pt); gradients need the torch model")
    p.add_argument("inputs", nargs="+", metavar="INPUT")
    p.add_argument("--out", required=True, help="folder for the adversarial images")
    p.add_argument("--method", choices=ATTACK_NAMES, default="fgsm")
    p.add_argument("--eps", type=_eps, default=4 / 255, help="L-inf eps in pixel units (L2 radius for pgd-l2)")
    p.add_argument("--steps", type=int, default=10, help="steps of iterative attacks")
    p.add_argument("--alpha", type=_eps, help="step size of PGD/BIM (default eps/4, at least 1/255)")
    p.add_argument("--restarts", type=int, default=1, help="random restarts of PGD/APGD")
    p.add_argument("--target", help="targeted attack towards this class (e.g. benign: make cancers look benign)")
    add_loss_option(p, default=DEFAULT_LOSS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto")

    p = sub.add_parser("export", help="export a checkpoint to ONNX (checked against torch)")
    p.add_argument("--model", required=True)
    p.add_argument("--out", required=True, help="the .onnx file to write")


def _add_deploy_commands(sub) -> None:
    """What the Diagnose edition runs too: prediction, slides, the black-box attack, certification, INT8, models,
    data."""
    p = sub.add_parser("predict", help="predict images or folders with an ONNX model (onnxruntime)")
    p.add_argument("--model", required=True, help="an ONNX file exported by HistoGuard")
    p.add_argument("inputs", nargs="+", metavar="INPUT")
    p.add_argument("--out", default="predictions.csv")
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--review-band", type=_band, metavar="LOW,HIGH",
        help="flag calls with LOW <= p(positive) <= HIGH as 'uncertain' (default: the model's own, else 0.2,0.8)",
    )  # fmt: skip

    p = sub.add_parser(
        "slide", help="predict a whole-slide image tile by tile: heatmap, tiles CSV and GeoJSON",
        description="A tile is the model's input size at the model's µm/px, cut from the slide at the slide's µm/px. "
        "A scale that cannot be right (a slide outside 0.05-20 µm/px, e.g. a TIFF's 72 dpi print resolution; a tile "
        "under 16 slide pixels or enlarged over 4x) is refused before any tile is read: give --slide-mpp. A damaged "
        "file is named in one line. slide.json records where each scale came from.",
    )  # fmt: skip
    p.add_argument(
        "slide", metavar="SLIDE",
        help=".svs, .ndpi, .mrxs, .scn, a DICOM slide (a .dcm file of it, or its folder), tiled TIFF, or a PNG/JPEG",
    )  # fmt: skip
    p.add_argument("--model", required=True, help="an ONNX file exported by HistoGuard")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for heatmap.png, tiles.csv, tiles.geojson")
    p.add_argument(
        "--model-mpp", type=float, default=None, metavar="MPP", help="microns per pixel of the model's training images "
        "(default: the model's metadata; without it one tile is image_size slide pixels)",
    )  # fmt: skip
    p.add_argument(
        "--slide-mpp", type=float, default=None, metavar="MPP",
        help="microns per level-0 pixel of the slide, over what the file records (about 0.25 at 40x, 0.5 at 20x); "
        "for files whose resolution tags are wrong or missing",
    )  # fmt: skip
    p.add_argument("--min-tissue", type=float, default=0.5, help="keep tiles with at least this tissue fraction")
    add_tile_options(p)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--device", default="auto")
    g = p.add_argument_group("robustness map (full edition: white-box attacks on the model's checkpoint)")
    g.add_argument(
        "--robustness", choices=("none", "fgsm", "pgd"), default="none",
        help="also map each tile's minimal flipping eps (robustness.png, flip_eps_255 in the CSV and GeoJSON)",
    )  # fmt: skip
    g.add_argument("--max-eps", type=int, default=16, metavar="K", help="search eps up to K/255 (default 16)")
    g.add_argument("--steps", type=int, default=10, help="PGD steps per attack (default 10)")
    g.add_argument(
        "--robust-limit", type=int, default=None, metavar="N",
        help="attack only the N most suspicious tiles (highest probability; default all)",
    )  # fmt: skip
    add_cohort_command(sub)

    p = sub.add_parser(
        "blackbox", help="Square attack (queries only) on a deployed ONNX model over a labelled folder; no torch"
    )
    p.add_argument("--model", required=True, help="an ONNX file exported by HistoGuard")
    add_data_options(p)
    p.add_argument(
        "--eps", type=_eps_list, default=(4 / 255, 8 / 255), help="comma-separated eps (default 4/255,8/255)"
    )
    p.add_argument("--queries", type=int, default=300, help="queries per image (default %(default)s)")
    p.add_argument("--limit", type=int, default=200, help="attack at most this many images (a fixed random subset)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="write the results as JSON here")

    p = sub.add_parser(
        "certify", help="certified L2 radius per image by randomized smoothing of an ONNX model; no torch"
    )
    add_data_options(p, required=False)
    add_certify_options(p)
    add_explain_command(sub)

    p = sub.add_parser(
        "quantize", help="an INT8 copy of an ONNX model (faster on CPU) and its accuracy change; no torch"
    )
    p.add_argument("--model", required=True, help="an fp32 ONNX file exported by HistoGuard")
    add_data_options(p)
    p.add_argument(
        "--split", choices=("train", "val", "test"), default="val", help="calibration images come from this split"
    )
    p.add_argument("--calibration-images", type=int, default=64, help="images that fix the INT8 ranges (default 64)")
    p.add_argument(
        "--mode", choices=("static", "dynamic"), default="static", help="static (calibrated, faster on CPU) or dynamic"
    )
    p.add_argument("--seed", type=int, default=0, help="which calibration images are drawn")
    p.add_argument("--out", help="the INT8 file (default <model>.int8.onnx); the comparison is written beside it")

    sub.add_parser("models", help="list the model architectures")

    p = sub.add_parser("data", help="what a dataset folder or CSV holds: classes, patients, magnifications, skips")
    add_data_options(p)
