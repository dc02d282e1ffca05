"""What each ``histoguard`` command does: build configs from arguments, call ``engine.api``, print results."""

from __future__ import annotations

import json
from pathlib import Path

from engine import api
from engine.cli.explain import run_explain
from engine.cli.slide_cmd import cmd_slide
from engine.cli.text import aligned, fmt
from engine.cli.train_options import LEVER_FIELDS
from engine.core.config import (
    DEMO_EPS,
    DEMO_TRAIN,
    AttackConfig,
    DataConfig,
    ExperimentConfig,
    TrainConfig,
    demo_config,
    replace_fields,
)
from engine.core.eps import format_eps
from engine.core.fileio import write_json

TRAIN_FIELDS = (
    "arch",
    "image_size",
    "epochs",
    "batch_size",
    "lr",
    "patience",
    "precision",
    "weights",
    "device",
    "seed",
    "adversarial",
    "adv_eps",
    "adv_steps",
    "adv_ratio",
    "trades_beta",
    *LEVER_FIELDS,
    "noise_sigma",
    "input_mpp",
)
# experiment options named as in ExperimentConfig (argparse dest -> field)
ROBUST_FIELDS = {
    "defence": "defence",
    "attacks": "robust_attacks",
    "pgd_steps": "pgd_steps",
    "pgd_restarts": "pgd_restarts",
    "attack_loss": "attack_loss",
    "strong": "strong",
    "strong_images": "strong_images",
    "strong_steps": "strong_steps",
    "strong_queries": "strong_queries",
    "min_eps_max": "min_eps_max",
    "blackbox_images": "blackbox_images",
    "blackbox_queries": "blackbox_queries",
    "certified_images": "certified_images",
    "gallery": "gallery",
    "bootstrap": "bootstrap_resamples",
}


def data_config(a) -> DataConfig:
    return DataConfig(
        data=a.data,
        demo=a.demo,
        positive_class=a.positive_class,
        magnification=a.magnification,
        patient_regex=a.patient_regex,
        split_level=a.split_level,
        ratios=a.split_ratios,
        split_seed=a.split_seed,
        split_file=a.split_file,
    )


def experiment_config(a, base: TrainConfig | None = None) -> ExperimentConfig:
    base = base or (DEMO_TRAIN if a.demo else TrainConfig())
    train = replace_fields(base, **{k: getattr(a, k, None) for k in TRAIN_FIELDS})
    eps = getattr(a, "eps", None) or (DEMO_EPS if a.demo else None)
    extra = {"eps": eps} if eps else {}
    if getattr(a, "sweep_eps", None):
        extra["sweep_eps"] = a.sweep_eps
    if getattr(a, "no_onnx", False):
        extra["export_onnx"] = False
    extra |= {field: getattr(a, dest) for dest, field in ROBUST_FIELDS.items() if getattr(a, dest, None) is not None}
    return ExperimentConfig(data=data_config(a), train=train, **extra)


def describe_dataset(summary: dict, max_skipped: int = 10) -> str:
    """Counts per class, patients and magnifications, and the skipped files with reasons."""
    lines = [
        f"{summary['n_images']} images ({summary['kind']}{', SYNTHETIC' if summary['synthetic'] else ''}) "
        f"in {summary['root']}",
        "  per class: "
        + ", ".join(f"{c} {n}" for c, n in summary["per_class"].items())
        + f" (positive class: {summary['positive_class']})",
        f"  patients: {summary['n_patients']} "
        + "("
        + ", ".join(f"{c} {n}" for c, n in summary["patients_per_class"].items())
        + ")",
        "  magnification: " + ", ".join(f"{m} {n}" for m, n in summary["per_magnification"].items()),
    ]
    skipped = summary["skipped"]
    if skipped:
        lines.append(f"  skipped {len(skipped)} files:")
        lines += [f"    {s['path']}: {s['reason']}" for s in skipped[:max_skipped]]
        if len(skipped) > max_skipped:
            lines.append(f"    ... and {len(skipped) - max_skipped} more (all listed in report.json)")
    return "\n".join(lines)


def cmd_data(a, progress) -> int:
    print(describe_dataset(api.load_dataset(data_config(a), on_progress=progress).summary()))
    return 0


def cmd_experiment(a, progress) -> int:
    if a.folds:
        summary = api.run_folds(
            experiment_config(a), a.out, a.folds, force=a.force, resume=a.resume, on_progress=progress
        )
        _print_folds(summary, a.out)
        return 0
    result = api.run_experiment(experiment_config(a), a.out, force=a.force, resume=a.resume, on_progress=progress)
    _print_result(result, a.out)
    return 0


def _print_robustness(robust: dict, title: str) -> None:
    if robust.get("rows"):
        from engine.report.robustness import HEADER, flags_text, table_rows

        print(f"\n{title}:\n")
        print(aligned([list(HEADER), *table_rows(robust)]))
        strong = table_rows(robust, ("strong",))
        if strong:
            print("\nStrong evaluation (APGD-CE, APGD-margin, Square; worst case per image):\n")
            print(aligned([list(HEADER), *strong]))
        print("\n" + flags_text(robust, bullet="  "))


def _print_folds(summary: dict, out: str) -> None:
    from engine.report.cv import EVAL_HEADER, evaluation_rows

    print(f"\n{summary['protocol']}\n\nImage level, mean ± sd over the {summary['k']} folds (then each fold):\n")
    print(aligned([list(EVAL_HEADER), *evaluation_rows(summary, "image")], left=1))
    print(f"\nSummary: {Path(out) / 'cv.md'} (also cv.json); each fold's run folder: {Path(out) / 'fold_1'} ...")


def cmd_demo(a, progress) -> int:
    result = api.run_experiment(
        demo_config(device=a.device), a.out, force=a.force, resume=a.resume, on_progress=progress
    )
    _print_result(result, a.out)
    return 0


def _print_result(result: dict, out: str) -> None:
    from engine.report.tables import text_table

    print(describe_dataset(result["dataset"], max_skipped=3))
    if result.get("synthetic_data"):
        print("SYNTHETIC DEMO DATA: these numbers show the workflow runs, not diagnostic performance.")
    base = next(e["majority_baseline"] for e in result["evaluations"] if e["level"] == "image")
    print(
        f"\nImage-level results on the test split ({result['split']['level']}-level split); "
        f"majority-class baseline accuracy {base:.3f}\n"
    )
    print(text_table(result["evaluations"], "image"))
    _print_robustness(
        result.get("robustness") or {},
        "Robustness (white-box on each model, black-box Square on its ONNX file, "
        "random noise; 'every attack': the worst case per image)",
    )
    if result.get("certified"):
        from engine.report.certified import HEADER, table_rows

        print(f"\nCertified accuracy of Model C's smoothed classifier (sigma {result['certified']['sigma']:g}):\n")
        print(aligned([list(HEADER), *table_rows(result["certified"])], left=0))
    onnx = ", ".join(Path(v["path"]).name for v in (result.get("onnx") or {}).values())
    print(
        f"\nReport: {Path(out) / 'report.md'}  (also report.html, report.json, split.csv{', ' + onnx if onnx else ''})"
    )


def cmd_demo_slide(a, progress) -> int:
    from engine.data.demo_slide import MPP, write_demo_slide

    path = write_demo_slide(a.out, a.side, seed=a.seed, on_progress=progress)
    print(f"SYNTHETIC demo slide {path}: {a.side:,} x {a.side:,} px at {MPP} µm/px (not real tissue)")
    return 0


def cmd_demo_data(a, progress) -> int:
    root = api.generate_demo_dataset(
        Path(a.out),
        patients_per_class=a.patients_per_class,
        images_per_patient=a.images_per_patient,
        seed=a.seed,
        on_progress=progress,
    )
    ds = api.discover(root)
    print(
        f"SYNTHETIC demo dataset in {root}: {ds.summary()['per_class']} images, {ds.summary()['n_patients']} patients"
    )
    return 0


def cmd_train(a, progress) -> int:
    summary = api.train_model(
        experiment_config(a),
        a.out,
        adversarial_from=a.adversarial_from,
        force=a.force,
        resume=a.resume,
        on_progress=progress,
    )
    from engine.train.distributed import env_context

    if env_context().is_main:  # under torchrun every rank returns here; one prints
        on = {"val_pgd_balanced_accuracy": " under PGD", "val_noisy_balanced_accuracy": " with noise"}
        print(
            f"best epoch {summary['best_epoch']}, validation balanced accuracy{on.get(summary['selected_by'], '')} "
            f"{summary['best_val_balanced_accuracy']:.3f}; checkpoint {Path(a.out) / summary['checkpoint']}"
        )
    return 0


def cmd_evaluate(a, progress) -> int:
    from engine.report.tables import text_table

    cfg = experiment_config(a, base=TrainConfig(device=a.device))
    result = api.evaluate_checkpoint(a.model, cfg, split=a.split, on_progress=progress)
    print(text_table(result["evaluations"], "image"))
    _print_robustness(result["robustness"], "Robustness (white-box on the model's own gradients, random noise)")
    if a.out:
        write_json(a.out, result)
    return 0


def cmd_attack(a, progress) -> int:
    attack = AttackConfig(
        a.method, a.eps, steps=a.steps, alpha=a.alpha, restarts=a.restarts, seed=a.seed, target=a.target, loss=a.loss
    )
    rows = api.attack_files(a.model, a.inputs, a.out, attack, device=a.device, on_progress=progress)
    flipped = sum(1 for r in rows if not r["error"] and r["clean_pred"] != r["adv_pred"])
    failed = [r for r in rows if r["error"]]
    write_json(Path(a.out) / "attack.json", rows)
    print(
        f"{len(rows) - len(failed)} adversarial images in {a.out}; prediction flipped for {flipped}"
        + (f"; {len(failed)} unreadable (see attack.json)" if failed else "")
    )
    return 0


def cmd_blackbox(a, progress) -> int:
    result = api.blackbox_images(
        a.model, api.ImageSource(data=data_config(a)), eps_values=a.eps, n_queries=a.queries, limit=a.limit,
        seed=a.seed, on_progress=progress,
    )  # fmt: skip
    rows = [["eps", "accuracy", "sensitivity", "specificity", "missed", "success", "mean queries"]]
    for r in result["results"]:
        cells = [r["accuracy"], r["sensitivity"], r["specificity"], r["missed_cancer_rate"], r["attack_success_rate"]]
        rows.append([format_eps(r["eps"]), *(fmt(v) for v in cells), fmt(r["mean_queries"], ".0f")])
    print(f"Square attack on {a.model} ({result['provider']}), {result['n_images']} images, {a.queries} queries each\n")
    print(aligned(rows))
    if a.out:
        write_json(a.out, result)
    return 0


def cmd_export(a, progress) -> int:
    info = api.export_checkpoint(a.model, a.out)
    print(json.dumps(info, indent=2))
    return 0


def cmd_predict(a, progress) -> int:
    rows = api.predict_files(a.model, a.inputs, a.out, device=a.device, review_band=a.review_band, on_progress=progress)
    bad = sum(1 for r in rows if r["error"])
    review = sum(1 for r in rows if r.get("review"))
    flagged = f", {review} uncertain (review band {rows[0]['review_band']})" if review else ""
    print(
        f"{len(rows) - bad} images predicted"
        + (f", {bad} unreadable" if bad else "")
        + f"{flagged}; written to {a.out}"
    )
    return 0


def cmd_certify(a, progress) -> int:
    from engine.cli.certify import run_certify

    return run_certify(a, progress, data_config(a) if a.data or a.demo else None)


def cmd_quantize(a, progress) -> int:
    from engine.report.labels import cell

    r = api.quantize_dataset(
        a.model, data_config(a), out=a.out, split=a.split, calibration_images=a.calibration_images, mode=a.mode,
        seed=a.seed, on_progress=progress,
    )  # fmt: skip
    q, c = r["quantization"], r["comparison"]
    n = q["calibration_images"]
    print(
        f"INT8 ({q['mode']}, {q['format']}) copy of {Path(a.model).name}: {q['path']} "
        f"({q['source_bytes'] / 1e6:.2f} MB -> {q['bytes'] / 1e6:.2f} MB), "
        + (f"{n} calibration images from the {r['calibration_split']} split" if n else "no calibration")
    )
    print(f"\nOn {c['n_images']} {r['evaluation_split']} images{' (SYNTHETIC data)' if r['synthetic_data'] else ''}:\n")
    keys = ("accuracy", "balanced_accuracy", "sensitivity", "specificity")
    rows = [["model", "accuracy", "balanced", "sensitivity", "specificity", "seconds"]]
    rows += [[m, *(cell(c[m], k) for k in keys), fmt(c[f"{m}_seconds"])] for m in ("fp32", "int8")]
    paired = c.get("paired") or {}
    change = fmt(c["accuracy_change"], "+.3f") + (
        f" ({paired['ci'][0]:+.3f} to {paired['ci'][1]:+.3f}, McNemar p {paired['p_value']:.3g})"
        if paired.get("ci")
        else ""
    )
    rows.append(["change", change, fmt(c["balanced_accuracy_change"], "+.3f"), "", "", ""])
    print(aligned(rows, left=1))
    print(
        f"\npredictions agree on {c['agreement']:.1%} ({c['flipped']} flipped); |probability difference| max "
        f"{c['max_abs_prob_diff']:.4f}, mean {c['mean_abs_prob_diff']:.4f}; written to {r['report']}"
    )
    return 0


def cmd_models(a, progress) -> int:
    from engine.models.registry import MODELS

    for name in api.list_models():
        print(f"{name:20s} {MODELS[name].description}")
    return 0


COMMANDS = {
    "experiment": cmd_experiment,
    "demo": cmd_demo,
    "demo-data": cmd_demo_data,
    "demo-slide": cmd_demo_slide,
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "attack": cmd_attack,
    "export": cmd_export,
    "blackbox": cmd_blackbox,
    "predict": cmd_predict,
    "certify": cmd_certify,
    "explain": run_explain,
    "slide": cmd_slide,
    "slides": __import__("engine.cli.cohort", fromlist=["cmd_slides"]).cmd_slides,  # one line: this file is full
    "quantize": cmd_quantize,
    "models": cmd_models,
    "data": cmd_data,
}
