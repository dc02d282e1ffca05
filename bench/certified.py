"""Randomized smoothing on the real IDC patches: one Gaussian-noise model per sigma, certified on the test patients.

    python -m bench.certified [--sigmas 0.12,0.25,0.5] [--epochs 10] [--images 150] [--n 1000] [--alpha 0.001]
                              [--out runs/certified] [--device cpu|cuda] [--threads N] [--reuse] [--quick]

The data, model and schedule of ``bench/ablation.py`` (the IDC patches of ``../shared/data`` or
``$HISTOGUARD_SHARED_DATA``, patient-level split 0.7/0.15/0.15, 48 px, DenseNet121 from scratch); each model is
trained by the project's loop with ``--defence gaussian --sigma S`` (Cohen, Rosenfeld & Kolter 2019: noise
augmentation, the epoch chosen on noisy validation images), exported to ONNX, and certified by the Diagnose
edition's CERTIFY (onnxruntime + numpy; n0 = 100 selection samples, ``--n`` estimation samples, Clopper-Pearson at
``--alpha``) on a fixed random subset of ``--images`` test patches. Reports the certified accuracy and balanced
accuracy at L2 radii 0 ... 1 with 95% patient-level bootstrap intervals, each radius's L-inf equivalent
(radius / sqrt(pixels), in /255), the abstentions and the seconds per certified image. Writes ``certified.md`` and
``certified.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from bench.ablation import Settings, load_data, settings
from bench.common import header, idc_manifest, setup
from engine.core.fileio import write_json

RADII = (0.0, 0.125, 0.25, 0.375, 0.5, 0.75, 1.0)
log = logging.getLogger("bench.certified")


def run_sigma(sigma: float, s: Settings, data: dict, a, out: Path) -> dict:
    """Train the sigma's noise model into out/sigma-S, export it, certify the test subset; keep result.json."""
    from engine.core.config import CertifyConfig
    from engine.core.intervals import Bootstrap
    from engine.deploy.certify_run import certify_set
    from engine.export.onnx_export import export_onnx
    from engine.train.study import adversarial_how, train_new_model

    cfg = replace(s.train, adversarial="gaussian", noise_sigma=sigma)
    certify = CertifyConfig(sigma=sigma, n=a.n, alpha=a.alpha)
    key = json.loads(json.dumps({"train": asdict(cfg), "certify": asdict(certify), "images": a.images,
                                 "split_hash": data["split_hash"]}))  # fmt: skip
    folder = out / f"sigma-{sigma:g}"
    record = folder / "result.json"
    if a.reuse and record.is_file() and (saved := json.loads(record.read_text())).get("key") == key:
        log.warning("sigma %g: reusing %s", sigma, record)
        return saved
    shutil.rmtree(folder, ignore_errors=True)
    t0 = time.perf_counter()
    model, result, meta = train_new_model(
        cfg, data["train"], data["val"], classes=data["classes"], how=adversarial_how(cfg),
        split_hash=data["split_hash"], out_dir=folder, name=f"smoothing sigma {sigma:g}",
    )  # fmt: skip
    trained = time.perf_counter() - t0
    onnx = folder / "model.onnx"
    export_onnx(model.cpu().eval(), onnx, meta, cfg.image_size)
    test = data["test"]
    idx = np.sort(np.random.default_rng(0).permutation(len(test))[: a.images])
    t1 = time.perf_counter()
    cert = certify_set(
        onnx, test.images[idx], test.labels[idx], groups=np.asarray(test.patients)[idx], config=certify, radii=RADII,
        bootstrap=Bootstrap(s.bootstrap), device="cpu",
    )  # fmt: skip
    seconds = time.perf_counter() - t1
    res = {"sigma": sigma, "key": key, "train_seconds": round(trained, 1), "best_epoch": result.best_epoch,
           "epochs_run": result.epochs_run, "certify_seconds_per_image": round(seconds / max(1, len(idx)), 3),
           "test_patients": len(set(np.asarray(test.patients)[idx].tolist())), **cert}  # fmt: skip
    write_json(record, res)
    at = next(r for r in res["curve"] if abs(r["radius"] - 0.25) < 1e-9)
    log.warning("sigma %g: certified bal. acc. at r=0.25 %.3f, %.2f s per image", sigma, at["balanced_accuracy"],
                res["certify_seconds_per_image"])  # fmt: skip
    return res


def _num(value, ci) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def render(report: dict) -> str:
    s, d = report["settings"], report["data"]
    results = report["results"]
    first = next(iter(results.values()))
    lines = [
        "## Randomized smoothing on the IDC patches" + (" (--quick: a smoke test, not a result)" if s["quick"] else ""),
        "",
        f"- data: {d['train']} train, {d['val']} val images; certified on {first['n_images']} test images of "
        f"{first['test_patients']} patients (a fixed random subset of {d['test']}), patient-level split; "
        f"{s['arch']} from scratch at {s['image_size']} px, {s['epochs']} epoch(s), Gaussian noise augmentation",
        f"- CERTIFY over onnxruntime: n0 = {first['n0']}, n = {first['n']}, alpha = {first['alpha']}; a call is "
        "certified at radius r when it is right, not an abstention and its L2 radius is >= r; balanced accuracy = "
        "the mean over the two classes; 95% patient-level bootstrap intervals",
        "",
    ]
    heads = ["sigma", *(f"r = {r:g} (L-inf {row['linf_255']:.2f}/255)" for r, row in zip(RADII, first["curve"])),
             "abstained", "s / image"]  # fmt: skip
    lines += ["certified balanced accuracy:", "", "| " + " | ".join(heads) + " |", "|" + " --- |" * len(heads)]
    for r in results.values():
        cells = [f"{r['sigma']:g}", *(_num(c["balanced_accuracy"], c["ci_balanced"]) for c in r["curve"]),
                 f"{r['abstained']}/{r['n_images']}", f"{r['certify_seconds_per_image']:.2f}"]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "certified accuracy:", "", "| " + " | ".join(heads[:-2]) + " |", "|" + " --- |" * (len(heads) - 2)]
    for r in results.values():
        cells = [f"{r['sigma']:g}", *(_num(c["accuracy"], c["ci"]) for c in r["curve"])]
        lines.append("| " + " | ".join(cells) + " |")
    at = {k: next(c for c in r["curve"] if abs(c["radius"] - 0.25) < 1e-9) for k, r in results.items()}
    best = max(at, key=lambda k: at[k]["balanced_accuracy"])
    lines += ["", f"best at L2 radius 0.25: sigma {results[best]['sigma']:g}, certified balanced accuracy "
              f"{_num(at[best]['balanced_accuracy'], at[best]['ci_balanced'])}"]  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    setup(a.threads)
    path = idc_manifest(a.data)
    if path is None:
        return 2
    s = settings(a.epochs, a.device, a.quick)
    if a.quick:
        a.n, a.images = min(a.n, 200), min(a.images, 12)
    data = load_data(Path(path), "idc", s)
    results = {f"{sg:g}": run_sigma(sg, s, data, a, a.out) for sg in a.sigmas}
    report = {"settings": {**asdict(s.train), "quick": a.quick}, "results": results,
              "data": {k: len(data[k]) for k in ("train", "val", "test")}}  # fmt: skip
    text = render(report)
    a.out.mkdir(parents=True, exist_ok=True)
    write_json(a.out / "certified.json", report)
    (a.out / "certified.md").write_text(text)
    machine = [line for line in header("HistoGuard randomized smoothing").splitlines() if "median" not in line]
    sys.stdout.write("\n".join(machine) + "\n\n" + text)
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.certified", description=__doc__.splitlines()[0])
    p.add_argument("--sigmas", type=lambda v: tuple(float(x) for x in v.split(",")), default=(0.12, 0.25, 0.5))
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--images", type=int, default=150, help="test images certified (a fixed random subset)")
    p.add_argument("--n", type=int, default=1000, help="CERTIFY's estimation samples per image (default 1000)")
    p.add_argument("--alpha", type=float, default=0.001)
    p.add_argument("--out", type=Path, default=Path("runs/certified"))
    p.add_argument("--device", default="cpu")
    p.add_argument("--data", type=Path)
    p.add_argument("--threads", type=int, help="torch CPU threads (1 where other jobs share the cores)")
    p.add_argument("--reuse", action="store_true")
    p.add_argument("--quick", action="store_true", help="tiny network, 1 epoch, a few images: a smoke test")
    return p


if __name__ == "__main__":
    sys.exit(main())
