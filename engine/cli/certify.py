"""``histoguard certify``: randomized-smoothing certificates of image files or a labelled dataset (torch-free)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from engine import api
from engine.cli.text import aligned, fmt
from engine.core.config import CertifyConfig, DataConfig
from engine.core.errors import ConfigError
from engine.runs.folder import CONFIG, SPLIT


def run_certify(a: argparse.Namespace, progress, data: DataConfig | None) -> int:
    """Certify ``a.inputs`` (files, folders) or the labelled images of ``data`` (a dataset, or a run folder's test
    split), write the CSV to ``a.out`` and print a summary (and, with labels, the certified accuracy curve)."""
    if bool(a.inputs) == (data is not None):
        raise ConfigError("give either image files or folders, or --data PATH (labelled images), not both or neither")
    cfg = CertifyConfig(sigma=a.sigma, n0=a.n0, n=a.n, alpha=a.alpha, batch_size=a.batch_size, seed=a.seed)
    if data is None:
        rows = api.certify_files(a.model, a.inputs, a.out, config=cfg, device=a.device, on_progress=progress)
        _print_summary(rows, a)
        return 0
    result = api.certify_dataset(
        a.model, _source(data), a.out, config=cfg, limit=a.limit, device=a.device, on_progress=progress
    )
    _print_summary(result["rows"], a)
    _print_curve(result)
    return 0


def _source(data: DataConfig):
    """A run folder's test split when ``--data`` names a run folder, else the labelled dataset."""
    root = Path(data.data).expanduser() if data.data else None
    if root is not None and (root / CONFIG).is_file() and (root / SPLIT).is_file():
        return api.ImageSource.of_run(root, "test")
    return api.ImageSource(data=data)


def _print_summary(rows: list[dict], a: argparse.Namespace) -> None:
    done = [r for r in rows if not r["error"]]
    abstained = sum(r["predicted"] == "abstain" for r in done)
    radii = [r["radius_l2"] for r in done if r["predicted"] != "abstain"]
    sigma = rows[0]["sigma"] if rows else a.sigma
    median = f"median certified L2 radius {np.median(radii):.3f}" if radii else "no certificate"
    bad = len(rows) - len(done)
    print(
        f"{len(done)} images certified with sigma {sigma:g}, n {a.n}, alpha {a.alpha:g}: {abstained} abstained, "
        f"{median}" + (f"; {bad} unreadable" if bad else "") + f"; written to {a.out}"
    )


def _ci(ci) -> str:
    return f"{ci[0]:.3f}-{ci[1]:.3f}" if ci else "—"


def _print_curve(result: dict) -> None:
    rows = [["L2 radius", "L-inf /255", "certified accuracy", "95% CI", "balanced", "95% CI"]]
    for r in result["curve"]:
        rows.append([f"{r['radius']:.3f}", f"{r['linf_255']:.2f}", fmt(r["accuracy"]), _ci(r["ci"]),
                     fmt(r.get("balanced_accuracy")), _ci(r.get("ci_balanced"))])  # fmt: skip
    synthetic = " (SYNTHETIC data)" if result["synthetic_data"] else ""
    print(f"\nCertified accuracy on {result['n_images']} images of {result['images']}{synthetic}:\n")
    print(aligned(rows, left=0))
