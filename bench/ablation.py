"""Ablation of the training levers on the real IDC patches: one hardened model per configuration, all evaluated alike.

    python -m bench.ablation [--levers baseline,ema,...] [--epochs 10] [--out runs/ablation] [--device cpu|cuda]
                             [--combine ema,hed] [--reuse] [--quick]

The data, model and schedule of ``bench/idc_experiment.sh`` (the IDC patches of ``../shared/data`` or
``$HISTOGUARD_SHARED_DATA``, patient-level split 0.7/0.15/0.15, 48 px, DenseNet121 from scratch, 10 epochs) and its
Model C, on-the-fly FGSM-RS at 4/255, as the baseline; each lever changes one thing (``LEVERS``). ``combined`` trains
with every lever whose score (the mean of clean and PGD-10 8/255 balanced accuracy) beat the baseline's, the best
TRADES beta only if TRADES did (``--combine`` names them instead). Every model is trained by the project's loop
(``engine.train.study.train_new_model``, robust early stopping included) and evaluated on the same test patients by
the project's evaluation: clean, white-box PGD-10 on the margin loss at 2/255 and 8/255 and the per-image worst case
of FGSM and PGD, balanced accuracy with 95% patient-level bootstrap intervals. Writes ``ablation.md`` and
``ablation.json`` to ``--out`` (each lever's checkpoints and ``result.json`` in a folder of its own; ``--reuse``
keeps results of the same settings). ``--quick``: a tiny network on a few images, a smoke test of the script only.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from bench.common import header, idc_manifest, setup
from engine.core.config import DataConfig, TrainConfig
from engine.core.eps import format_eps
from engine.core.fileio import write_json

EVAL_EPS = (2 / 255, 8 / 255)
BAR = "a plain script (docs: FINDINGS.md) kept ~0.82 clean and ~0.64 under white-box PGD-10 at 8/255"
# name -> (what it changes, the TrainConfig changes made to the baseline's config)
LEVERS = {
    "baseline": ("FGSM-RS at 4/255, the experiment's Model C", lambda b: {}),
    "ema": ("+ EMA of the weights, decay 0.999", lambda b: {"ema_decay": 0.999}),
    "hed": ("+ HED stain jitter, scale 0.2, shift 0.05 OD", lambda b: {"hed_scale": 0.2, "hed_shift": 0.05}),
    "trades-1": ("TRADES, beta 1", lambda b: {"adversarial": "trades", "trades_beta": 1.0}),
    "trades-3": ("TRADES, beta 3", lambda b: {"adversarial": "trades", "trades_beta": 3.0}),
    "trades-6": ("TRADES, beta 6", lambda b: {"adversarial": "trades", "trades_beta": 6.0}),
    "awp": ("+ AWP, gamma 5e-3", lambda b: {"awp_gamma": 5e-3}),
    "long": ("longer schedule, twice the epochs", lambda b: {"epochs": 2 * b.epochs}),
    "mix": ("clean/adversarial mix, adv_ratio 0.5", lambda b: {"adv_ratio": 0.5}),
}
ALL = (*LEVERS, "combined")
log = logging.getLogger("bench.ablation")


@dataclass(frozen=True)
class Settings:
    train: TrainConfig
    pgd_steps: int = 10
    bootstrap: int = 1000
    limits: tuple[int, int, int] | None = None  # at most this many train, val and test images (--quick)


def settings(epochs: int, device: str, quick: bool) -> Settings:
    from bench.robustness import IDC_TRAIN

    base = replace(IDC_TRAIN, epochs=epochs, device=device, adversarial="fgsm-rs", adv_eps=4 / 255)
    if not quick:
        return Settings(base)
    tiny = replace(base, arch="small_cnn", image_size=32, epochs=1, adv_steps=2)
    return Settings(tiny, pgd_steps=2, bootstrap=20, limits=(96, 48, 48))


def load_data(path: Path, positive_class: str, s: Settings) -> dict:
    """The patient-level split of ``path``, decoded at the training size (subsets of it with ``s.limits``)."""
    from engine.data.prepare import prepare_data
    from engine.data.split import split_hash

    data = prepare_data(DataConfig(data=str(path), positive_class=positive_class), s.train.image_size)
    sets = {name: data.arrays(name) for name in ("train", "val", "test")}
    if s.limits:
        sets = {name: _subset(a, n) for (name, a), n in zip(sets.items(), s.limits)}
    return {**sets, "classes": data.dataset.classes, "split_hash": split_hash(data.dataset, data.split)}


def _subset(a, n: int):
    from engine.data.arrays import ArraySet

    idx = np.sort(np.random.default_rng(0).permutation(len(a))[:n])
    return ArraySet(a.images[idx], a.labels[idx], None if a.patients is None else a.patients[idx])


def plan(s: Settings):
    from engine.evaluate.robustness import RobustnessPlan

    return RobustnessPlan(eps_values=EVAL_EPS, attacks=("fgsm", "pgd"), steps=s.pgd_steps, baselines=(), natural=False)


def run_lever(name: str, changes: dict, what: str, s: Settings, data: dict, out: Path, reuse: bool) -> dict:
    """Train ``name`` (the baseline's config with ``changes``) into out/name, evaluate it, keep result.json."""
    from engine.core.intervals import Bootstrap
    from engine.evaluate.core import Evaluation
    from engine.evaluate.robustness import plan_dict, robustness_rows
    from engine.models.device import resolve_device
    from engine.train.study import adversarial_how, train_new_model

    cfg = replace(s.train, **changes)
    key = json.loads(json.dumps({"train": asdict(cfg), "plan": plan_dict(plan(s)), "bootstrap": s.bootstrap,
                                 "limits": s.limits, "split_hash": data["split_hash"]}))  # fmt: skip
    folder, record = out / name, out / name / "result.json"
    if reuse and record.is_file() and (saved := json.loads(record.read_text())).get("key") == key:
        log.warning("%s: reusing %s", name, record)
        return saved
    shutil.rmtree(folder, ignore_errors=True)
    t0 = time.perf_counter()
    model, result, meta = train_new_model(
        cfg, data["train"], data["val"], classes=data["classes"], how=adversarial_how(cfg),
        split_hash=data["split_hash"], out_dir=folder, name=f"ablation {name}",
    )  # fmt: skip
    trained = time.perf_counter() - t0
    ev = Evaluation({name: model}, data["test"], resolve_device(cfg.device), 64, bootstrap=Bootstrap(s.bootstrap))
    rows = robustness_rows(ev, plan(s))
    res = {
        "lever": name, "what": what, "changes": changes, "key": key, "how_trained": meta.training,
        "train_seconds": round(trained, 1), "eval_seconds": round(time.perf_counter() - t0 - trained, 1),
        "best_epoch": result.best_epoch, "epochs_run": result.epochs_run, "stopped_early": result.stopped_early,
        **_cells(rows),
    }  # fmt: skip
    write_json(record, res)
    log.warning("%s: %s", name, _line(res))
    return res


def _cells(rows: list[dict]) -> dict:
    def cell(row: dict) -> dict:
        return {k: row[k] for k in ("balanced_accuracy", "accuracy", "missed_cancer_rate")} | {
            "ci": row["ci"]["balanced_accuracy"]
        }

    def find(kind: str, attack: str, eps: float) -> dict:
        return cell(next(r for r in rows if r["kind"] == kind and r["attack"] == attack and abs(r["eps"] - eps) < 1e-9))

    clean = cell(next(r for r in rows if r["kind"] == "clean"))
    pgd = {format_eps(e): find("white-box", "pgd", e) for e in EVAL_EPS}
    worst = {format_eps(e): find("worst-case", "worst-case", e) for e in EVAL_EPS}
    score = (clean["balanced_accuracy"] + pgd[format_eps(EVAL_EPS[-1])]["balanced_accuracy"]) / 2
    return {"clean": clean, "pgd": pgd, "worst_case": worst, "score": round(score, 4)}


def combination(results: dict, named: tuple[str, ...] | None, s: Settings) -> tuple[dict, list[str]]:
    """The changes of the combined model and the levers they come from: ``named``, or those that beat the
    baseline's score (of the TRADES betas, only the best one)."""
    if named is None:
        if "baseline" not in results:
            raise SystemExit("combined: the baseline's result is needed to choose the levers; add baseline to --levers")
        bar = results["baseline"]["score"]
        named = tuple(n for n in LEVERS if n != "baseline" and n in results and results[n]["score"] > bar)
        trades = sorted((n for n in named if n.startswith("trades")), key=lambda n: results[n]["score"])
        named = tuple(n for n in named if not n.startswith("trades") or n == trades[-1])
    changes: dict = {}
    for n in named:
        changes |= LEVERS[n][1](s.train)
    return changes, list(named)


def _line(r: dict) -> str:
    big = format_eps(EVAL_EPS[-1])
    return (f"clean {_num(r['clean'])}, PGD {big} {_num(r['pgd'][big])}, worst case {_num(r['worst_case'][big])}, "
            f"trained in {r['train_seconds']:.0f} s")  # fmt: skip


def _seconds(t: float) -> str:
    return f"{t:.1f} s" if t < 10 else f"{t:.0f} s"


def _num(cell: dict) -> str:
    ci = cell["ci"]
    interval = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
    return f"{cell['balanced_accuracy']:.3f}{interval}"


def render(report: dict) -> str:
    s, d = report["settings"], report["data"]
    small, big = (format_eps(e) for e in EVAL_EPS)
    heads = ["lever", "what", "clean bal. acc.", f"PGD-{s['pgd_steps']} {small}", f"PGD-{s['pgd_steps']} {big}",
             f"worst case {big}", "score", "epochs (best)", "train time"]  # fmt: skip
    lines = [
        "## Training levers on the IDC patches" + (" (--quick: a smoke test, not a result)" if s["quick"] else ""),
        "",
        f"- data: {d['train']} train, {d['val']} val, {d['test']} test images ({d['test_patients']} test patients), "
        f"patient-level split; {s['arch']} from scratch at {s['image_size']} px, {s['epochs']} epoch(s), batch "
        f"{s['batch_size']}, FGSM-RS at {format_eps(s['adv_eps'])} unless the lever says otherwise; "
        f"device {s['device']}",
        f"- balanced accuracy on the test split, white-box PGD-{s['pgd_steps']} on the margin loss (random start) and "
        "the per-image worst case of FGSM and PGD, with 95% patient-level bootstrap intervals "
        f"({s['bootstrap']} resamples); score = mean of clean and PGD {big}",
        f"- the bar: {BAR}",
        "",
        "| " + " | ".join(heads) + " |",
        "|" + " --- |" * len(heads),
    ]
    for r in report["results"].values():
        cells = [r["lever"], r["what"], _num(r["clean"]), _num(r["pgd"][small]), _num(r["pgd"][big]),
                 _num(r["worst_case"][big]), f"{r['score']:.3f}", f"{r['epochs_run']} ({r['best_epoch']})",
                 _seconds(r["train_seconds"])]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    if report.get("combined_from") is not None:
        lines += ["", "combined = baseline + " + (", ".join(report["combined_from"]) or "nothing (no lever helped)")]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    a = _parser().parse_args(argv)
    setup(a.threads)
    levers = [n for n in ALL if n in a.levers]
    path = idc_manifest(a.data)
    if path is None:
        return 2
    s = settings(a.epochs, a.device, a.quick)
    data = load_data(Path(path), a.positive_class, s)
    results = {n: run_lever(n, LEVERS[n][1](s.train), LEVERS[n][0], s, data, a.out, a.reuse) for n in levers
               if n != "combined"}  # fmt: skip
    combined_from = None
    if "combined" in levers:
        changes, combined_from = combination(results, a.combine, s)
        if len(combined_from) == 1 and a.combine is None:  # one lever helped: its model, not a second copy of it
            (only,) = combined_from
            what = f"= {only} (the only lever that helped)"
            results["combined"] = {**results[only], "lever": "combined", "what": what}
        elif changes:
            what = "+ " + ", ".join(combined_from)
            results["combined"] = run_lever("combined", changes, what, s, data, a.out, a.reuse)
        else:  # the baseline's settings: its model, not a second copy of it
            results["combined"] = {**results["baseline"], "lever": "combined", "what": "the baseline (no lever helped)"}
    report = {"settings": {**asdict(s.train), "pgd_steps": s.pgd_steps, "bootstrap": s.bootstrap, "quick": a.quick},
              "data": {**{k: len(data[k]) for k in ("train", "val", "test")},
                       "test_patients": len(set(np.asarray(data["test"].patients).tolist())), "path": str(path)},
              "results": results, "combined_from": combined_from}  # fmt: skip
    text = render(report)
    a.out.mkdir(parents=True, exist_ok=True)
    write_json(a.out / "ablation.json", report)
    (a.out / "ablation.md").write_text(text)
    machine = [line for line in header("HistoGuard ablation").splitlines() if "median" not in line]
    sys.stdout.write("\n".join(machine) + "\n\n" + text)
    return 0


def _names(choices: tuple[str, ...]):
    def parse(value: str) -> tuple[str, ...]:
        names = tuple(v.strip() for v in value.split(",") if v.strip())
        if not names or any(n not in choices for n in names):
            raise argparse.ArgumentTypeError(f"choose from {', '.join(choices)}")
        return names

    return parse


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.ablation", description=__doc__.splitlines()[0])
    p.add_argument("--levers", type=_names(ALL), default=ALL, help=f"comma-separated subset of {','.join(ALL)}")
    p.add_argument(
        "--combine", type=_names(ALL[1:-1]), help="the levers of 'combined' (default: those that beat the baseline)"
    )
    p.add_argument("--epochs", type=int, default=10, help="epochs of every lever but 'long' (twice that; default 10)")
    p.add_argument("--out", type=Path, default=Path("runs/ablation"))
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    p.add_argument("--data", type=Path, help="CSV manifest or folder (default: the shared IDC patches)")
    p.add_argument("--positive-class", default="idc")
    p.add_argument(
        "--threads", type=int,
        help="torch CPU threads (default: torch's, one per core); 1 where other jobs share the cores, as OpenMP "
        "threads then stall (measured 10x slower on 2 busy cores)",
    )  # fmt: skip
    p.add_argument("--reuse", action="store_true", help="keep the results of levers already run with these settings")
    p.add_argument("--quick", action="store_true", help="tiny network, 1 epoch, a few images: a smoke test")
    return p


if __name__ == "__main__":
    sys.exit(main())
