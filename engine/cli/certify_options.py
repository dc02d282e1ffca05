"""The options of ``histoguard certify`` (its data options are the shared ``--data``/``--demo`` group)."""

from __future__ import annotations

import argparse

from engine.core.config import CertifyConfig


def add_certify_options(p: argparse.ArgumentParser) -> None:
    d = CertifyConfig()
    p.add_argument("--model", required=True, help="an ONNX file exported by HistoGuard")
    p.add_argument("inputs", nargs="*", metavar="IMAGE", help="image files or folders (or --data for labelled images)")
    p.add_argument(
        "--sigma", type=float,
        help="noise standard deviation on [0, 1] images (default: the model's own, from its training with "
        "--adversarial gaussian)",
    )  # fmt: skip
    p.add_argument("--n", type=int, default=d.n, help="noisy copies that bound the probability (default %(default)s)")
    p.add_argument("--n0", type=int, default=d.n0, help="noisy copies that choose the class (default %(default)s)")
    p.add_argument("--alpha", type=float, default=d.alpha, help="failure probability (default %(default)s)")
    p.add_argument(
        "--batch-size", type=int, default=d.batch_size, help="noisy copies per onnxruntime call (default %(default)s)"
    )
    p.add_argument("--seed", type=int, default=d.seed, help="seed of the noise (default %(default)s)")
    p.add_argument("--limit", type=int, default=100, help="with --data: at most this many images (a fixed subset)")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", required=True, help="the CSV to write (one row per image, with the model's sha256)")
