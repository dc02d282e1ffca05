"""The study's whole workflow in one call: train A, FGSM from A, train B on original + FGSM images,
evaluate both clean and under attack (transfer and white-box), sweep eps, export both to ONNX, report.
"""

from __future__ import annotations

import logging
import platform
import time
from pathlib import Path

import numpy as np
import torch

from engine import __version__
from engine.core.config import ExperimentConfig
from engine.core.progress import CancelToken, ProgressCallback, report
from engine.data.arrays import ArraySet
from engine.data.prepare import PreparedData, prepare_data
from engine.data.split import save_split, split_hash, split_summary
from engine.evaluate.calibration import calibration_section
from engine.evaluate.conditions import conditions, sweep
from engine.evaluate.core import Evaluation, intervals_record
from engine.evaluate.suite import add_blackbox, certified_section, finish, robustness_section
from engine.export.onnx_export import export_verified, parity_batches
from engine.models.device import describe_device, resolve_device
from engine.models.tensors import to_tensor
from engine.runs.folder import RunFolder
from engine.train.distributed import require_single_process
from engine.train.study import defence_config, merged_fgsm_sets, study_fgsm, train_new_model
from engine.workflows.gallery import gallery_section
from engine.workflows.reports import write_run_report

log = logging.getLogger(__name__)


def run_experiment(
    cfg: ExperimentConfig,
    out: str | Path,
    *,
    force: bool = False,
    resume: bool = False,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> dict:
    """Run everything into the run folder ``out`` and return the report (also saved as report.json)."""
    require_single_process("histoguard experiment (and demo)")
    resuming = RunFolder.check(out, cfg, force=force, resume=resume)
    split_file = RunFolder.saved_split(out, resuming)
    # bad data fails here, before anything is written to the run folder
    data = prepare_data(
        cfg.data, cfg.train.image_size, split_file=split_file, on_progress=on_progress, cancel=cancel,
        stain_norm=cfg.train.stain_norm, stain_reference=cfg.train.stain_reference,
    )  # fmt: skip
    with RunFolder.prepare(out, cfg, force=force, resume=resume) as run, run.logging_to_file():
        return _run(cfg, run, data, on_progress, cancel)


def _run(cfg: ExperimentConfig, run: RunFolder, data: PreparedData, on_progress, cancel) -> dict:
    t0 = time.perf_counter()
    device = resolve_device(cfg.train.device)
    log.info("HistoGuard %s on %s, torch %s", __version__, describe_device(device), torch.__version__)
    if data.dataset.skipped:
        log.warning("%d files skipped (see report.json): %s", len(data.dataset.skipped), data.dataset.skipped[0].reason)
    if not run.path("split.csv").exists():
        save_split(run.path("split.csv"), data.dataset, data.split)
    train, val, test = data.arrays("train"), data.arrays("val"), data.arrays("test")
    timings: dict[str, float] = {}
    model_a, hist_a, meta_a = _train("A", cfg, run, data, train, val, {"method": "clean"}, timings, on_progress, cancel)
    t = time.perf_counter()
    train_b, val_b, how_b = merged_fgsm_sets(
        model_a,
        train,
        val,
        attack=study_fgsm(cfg.eps),
        source_name="A",
        batch_size=cfg.eval_batch_size,
        on_progress=on_progress,
        cancel=cancel,
    )
    timings["fgsm_train_set"] = round(time.perf_counter() - t, 2)
    model_b, hist_b, meta_b = _train("B", cfg, run, data, train_b, val_b, how_b, timings, on_progress, cancel)
    models, metas = {"A": model_a, "B": model_b}, {"A": meta_a, "B": meta_b}
    training = {"A": hist_a, "B": hist_b}
    if cfg.defence != "none":
        c_cfg, how_c = defence_config(cfg.train, cfg.defence, cfg.eps)
        models["C"], training["C"], metas["C"] = _train(
            "C", cfg, run, data, train, val, how_c, timings, on_progress, cancel, train_cfg=c_cfg
        )
    t = time.perf_counter()
    # one cache (and one bootstrap) for every table
    ev = Evaluation(models, test, device, cfg.eval_batch_size, on_progress, cancel, bootstrap=cfg.bootstrap())
    evaluations, sweep_rows = conditions(ev, cfg.eps), sweep(ev, cfg.sweep_eps)
    val_ev = Evaluation(models, val, device, cfg.eval_batch_size, on_progress, cancel, bootstrap=cfg.bootstrap())
    calibration = calibration_section(val_ev, ev, metas)
    robustness = robustness_section(cfg, ev)
    timings["evaluate"] = round(time.perf_counter() - t, 2)
    onnx = _export(cfg, run, models, metas, test, timings, on_progress) if cfg.export_onnx else {}
    t = time.perf_counter()
    onnx_paths = {name: run.onnx(name) for name in onnx}
    add_blackbox(robustness, ev, cfg, onnx_paths, on_progress, cancel)
    finish(robustness)
    timings["blackbox"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    certified = certified_section(cfg, ev, onnx_paths, on_progress, cancel)
    timings["certify"] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    names = [data.dataset.records[i].path.name for i in data.split.indices("test")]
    gallery, gallery_files = gallery_section(cfg, ev, metas, names)
    timings["gallery"] = round(time.perf_counter() - t, 2)
    timings["total"] = round(time.perf_counter() - t0, 2)
    result = {
        "histoguard_version": __version__,
        "synthetic_data": data.dataset.synthetic,
        "dataset": data.dataset.summary(),
        "split": split_summary(data.dataset, data.split),
        "eps": cfg.eps,
        "intervals": intervals_record(cfg.bootstrap(), test),
        "evaluations": evaluations,
        "sweep": sweep_rows,
        "calibration": calibration,
        "robustness": robustness,
        **({"certified": certified} if certified else {}),
        **({"gallery": gallery} if gallery else {}),
        "onnx": onnx,
        "training": training,
        "config": cfg.to_dict(),
        "environment": {
            "device": describe_device(device),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "timings_s": timings,
    }
    write_run_report(run, result, gallery_files)
    report(on_progress, "done", 1, 1, message=f"report written to {run.path('report.md')}")
    return result


def _train(
    name,
    cfg: ExperimentConfig,
    run: RunFolder,
    data: PreparedData,
    train,
    val,
    how,
    timings,
    on_progress,
    cancel,
    train_cfg=None,
):
    t = time.perf_counter()
    model, result, meta = train_new_model(
        train_cfg or cfg.train,
        train,
        val,
        classes=data.dataset.classes,
        how=how,
        split_hash=split_hash(data.dataset, data.split),
        out_dir=run.model_dir(name),
        name=f"Model {name}",
        synthetic_data=data.dataset.synthetic,
        calibrate_on=data.arrays("val"),  # clean validation images, also for Model B's merged set
        stain=data.stain,  # every split is normalised to it (engine.data.prepare)
        on_progress=on_progress,
        cancel=cancel,
    )
    timings[f"train_{name}"] = round(time.perf_counter() - t, 2)
    summary = {**result.summary(meta.training, stored=run.relative), "calibration": meta.calibration}
    return model, summary, meta


def _export(cfg, run: RunFolder, models: dict, metas: dict, test: ArraySet, timings: dict, on_progress) -> dict:
    t = time.perf_counter()
    clean = np.ascontiguousarray(test.images[:16])
    out = {}
    for i, (name, model) in enumerate(models.items(), start=1):
        device = next(model.parameters()).device
        x = to_tensor(clean, device)
        y = torch.from_numpy(test.labels[:16]).to(device)
        batches = parity_batches(model, x, y, cfg.eps)
        info = export_verified(model, run.onnx(name), metas[name].replace(eps=cfg.eps), cfg.train.image_size, batches)
        out[name] = {**info, "path": run.relative(info["path"])}
        model.to(device)
        report(on_progress, "export ONNX", i, len(models), unit="models")
    timings["export"] = round(time.perf_counter() - t, 2)
    return out
