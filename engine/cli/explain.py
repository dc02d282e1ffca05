"""``histoguard explain``: attribution maps of image files, each with the randomisation sanity check.

Occlusion of an ONNX file runs with onnxruntime only (the Diagnose edition); Grad-CAM, Integrated Gradients and
SmoothGrad need the torch model: a checkpoint, or an ONNX file whose checkpoint lies beside it in its run folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from engine import api
from engine.core.catalog import EXPLAIN_INFO, EXPLAIN_METHODS
from engine.core.edition import DIAGNOSE, edition, needs_full_edition
from engine.core.errors import ConfigError
from engine.deploy.saliency import SANITY_THRESHOLD


def add_explain_command(sub) -> None:
    p = sub.add_parser(
        "explain", help="attribution maps (why this call) of images: overlay PNG, raw map, sanity check"
    )  # fmt: skip
    p.add_argument("--model", required=True, help="an ONNX file (occlusion, no torch) or a checkpoint (.pt)")
    p.add_argument("inputs", nargs="+", metavar="IMAGE", help="image files or folders")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for <image>_<method>.png/.npy and the table")
    p.add_argument(
        "--method", choices=EXPLAIN_METHODS,
        help="occlusion (any model; the only one for an ONNX file without its checkpoint), gradcam, ig (Integrated "
        "Gradients) or smoothgrad; default occlusion for .onnx, gradcam for .pt",
    )  # fmt: skip
    p.add_argument("--target", help="the class to explain (default: the model's call on each image)")
    p.add_argument("--no-sanity", action="store_true", help="skip the randomised-model check (halves the time)")
    g = p.add_argument_group("method settings")
    g.add_argument("--window", type=int, help="occlusion: window side in pixels (default a quarter of the image)")
    g.add_argument("--stride", type=int, help="occlusion: step in pixels (default half the window)")
    g.add_argument("--baseline", choices=("blur", "grey"), default="blur", help="occlusion: what hides a window")
    g.add_argument("--steps", type=int, default=32, help="ig: integration steps (default %(default)s)")
    g.add_argument("--samples", type=int, default=16, help="smoothgrad: noisy copies (default %(default)s)")
    g.add_argument("--seed", type=int, default=0, help="the randomised model's and SmoothGrad's noise seed")
    p.add_argument("--device", default="auto")


def run_explain(a: argparse.Namespace, progress) -> int:
    method = a.method or api.default_explain_method(a.model)
    if EXPLAIN_INFO[method].torch and edition() == DIAGNOSE:
        what = f"`histoguard explain --method {method}`"
        raise ConfigError(f"{needs_full_edition(what)} (--method occlusion does not)")
    rows = api.explain_files(
        a.model, a.inputs, a.out, method=method, target=a.target, sanity=not a.no_sanity, device=a.device,
        window=a.window, stride=a.stride, baseline=a.baseline, steps=a.steps, samples=a.samples, seed=a.seed,
        on_progress=progress,
    )  # fmt: skip
    done = [r for r in rows if not r.get("error")]
    failed = [r for r in done if r.get("sanity") == "FAILED"]
    label = EXPLAIN_INFO[method].label
    for r in done:
        check = f"randomised-model rank correlation {r['rank_corr_randomised']:.2f}" if r["sanity"] else "no check"
        print(f"{Path(r['path']).name}: {r['predicted']}, {label} map of {r['target']} ({check}) -> {r['overlay']}")
    bad = len(rows) - len(done)
    print(f"{len(done)} images explained with {label}" + (f"; {bad} unreadable" if bad else "") + f"; table in {a.out}")
    if failed:
        print(
            f"warning: {label} FAILS the randomisation sanity check on {len(failed)} of {len(done)} images (rank "
            f"correlation with a randomised model above {SANITY_THRESHOLD:g}): its maps show the image more than what "
            "the model learned; compare with another --method before trusting them"
        )
    return 0
