"""Robustness benchmark: Models A (clean), B (the study's merged FGSM set) and C (on-the-fly FGSM-RS
adversarial training) on the synthetic demo set and on the real IDC patches (patient-level split, CPU):
clean accuracy, accuracy under white-box FGSM and PGD-10 at eps 1, 2, 4 and 8 /255, and missed-cancer rate.

    python -m bench.robustness [--out runs/bench] [--only demo|idc] [--reuse]

Each dataset is one ``histoguard experiment`` run (its report.json has everything); ``--reuse`` prints the
tables of finished runs without training again. Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from engine.core.config import DataConfig, ExperimentConfig, TrainConfig, demo_config
from engine.core.eps import format_eps

EPS = (1 / 255, 2 / 255, 4 / 255, 8 / 255)
SHARED = Path(os.environ.get("HISTOGUARD_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data"))
# the issue-2 IDC settings (bench/idc_experiment.sh): DenseNet121 from scratch at 48 px, FGSM eps 4/255
IDC_TRAIN = TrainConfig(
    arch="densenet121", image_size=48, epochs=10, batch_size=32, lr=1e-3, patience=6, weights="none", device="cpu"
)


def configs(device: str = "cpu") -> dict[str, ExperimentConfig]:
    common = {"sweep_eps": (0.0, *EPS), "pgd_steps": 10, "blackbox_images": 100, "blackbox_queries": 300}
    demo = demo_config(device=device)
    idc = DataConfig(data=str(SHARED / "idc_subset" / "MANIFEST.csv"), positive_class="idc")
    return {
        "demo": ExperimentConfig(data=demo.data, train=demo.train, eps=demo.eps, **common),
        "idc": ExperimentConfig(data=idc, train=replace(IDC_TRAIN, device=device), eps=4 / 255, **common),
    }


def run(name: str, cfg: ExperimentConfig, out: Path, reuse: bool) -> dict:
    from engine.workflows.experiment import run_experiment

    report = out / "report.json"
    if reuse and report.is_file():
        return json.loads(report.read_text())
    t0 = time.perf_counter()
    run_experiment(cfg, out, force=True)
    logging.getLogger(__name__).info("%s: %.0f s", name, time.perf_counter() - t0)
    return json.loads(report.read_text())


def tables(name: str, report: dict) -> str:
    rows = report["robustness"]["rows"]
    clean = {r["model"]: r for r in rows if r["kind"] == "clean"}

    def cell(model, attack, eps, key):
        hit = [r for r in rows if (r["model"], r["attack"], r["kind"]) == (model, attack, "white-box")]
        hit = [r for r in hit if abs(r["eps"] - eps) < 1e-9]
        return _f(hit[0][key]) if hit else "—"

    head = (
        ["model", "how trained", "clean"]
        + [f"FGSM {format_eps(e)}" for e in EPS]
        + [f"PGD-10 {format_eps(e)}" for e in EPS]
    )
    test, base = report["split"]["test"], next(e["majority_baseline"] for e in report["evaluations"])
    out = [
        f"### {name}: {test['n_images']} test images of {test['n_patients']} patients "
        f"({report['split']['level']}-level split); majority baseline {_f(base)}; "
        f"run time {report['timings_s']['total']:.0f} s\n"
    ]
    for key, title in (("accuracy", "accuracy"), ("missed_cancer_rate", "missed-cancer rate")):
        out += [f"\n{title}\n", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for m in sorted(clean):
            how = _how(report["training"][m]["how_trained"])
            cells = [_f(clean[m][key])] + [cell(m, "fgsm", e, key) for e in EPS] + [cell(m, "pgd", e, key) for e in EPS]
            out.append(f"| {m} | {how} | " + " | ".join(cells) + " |")
    bb = [r for r in rows if r["kind"] == "black-box"]
    if bb:
        out.append(
            "\nblack-box Square on the ONNX files: "
            + "; ".join(
                f"{r['model']} {_f(r['clean_accuracy_same_images'])} -> {_f(r['accuracy'])} at {format_eps(r['eps'])} "
                f"({r['steps']} queries, {r['n']} images)"
                for r in bb
            )
        )
    flags = report["robustness"]["flags"]
    out.append("\nflags: " + ("; ".join(f"{f['model']}: {f['flag']}" for f in flags) if flags else "none"))
    med = report["robustness"].get("min_eps", {})
    if med:
        out.append(
            "median minimal flipping eps (PGD): "
            + ", ".join(f"{m} {v['median_255']:g}/255" for m, v in sorted(med.items()))
        )
    return "\n".join(out)


def _how(how: dict) -> str:
    if how["method"] == "merged-fgsm":
        return f"study: + FGSM {format_eps(how['eps'])} images of {how['attack_source']}"
    if how["method"] == "adversarial-training":
        return f"{how['defence']} at {format_eps(how['eps'])}"
    return how["method"]


def _f(v) -> str:
    return "—" if v is None else f"{v:.3f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/bench", type=Path)
    p.add_argument("--only", choices=("demo", "idc"))
    p.add_argument("--reuse", action="store_true", help="print the tables of finished runs")
    p.add_argument("--device", default="cpu", help="cpu (the issue's setting), cuda or auto")
    a = p.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    for name, cfg in configs(a.device).items():
        if a.only and name != a.only:
            continue
        if name == "idc" and not (SHARED / "idc_subset").is_dir():
            sys.stdout.write(f"IDC data not found in {SHARED}; skipped\n")
            continue
        report = run(name, cfg, a.out / name, a.reuse)
        sys.stdout.write(tables(name, report) + "\n\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
