"""``histoguard train``: one model into a run folder (clean, on-the-fly adversarial training, or the study's
Model B on originals + FGSM images made on another checkpoint)."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from engine.core.config import ExperimentConfig
from engine.core.errors import ConfigError, option
from engine.core.fileio import write_json
from engine.core.progress import CancelToken, ProgressCallback
from engine.data.prepare import PreparedData, prepare_data
from engine.data.split import save_split, split_hash
from engine.models.checkpoint import load_checkpoint
from engine.models.device import resolve_device
from engine.runs.folder import SPLIT, TRAIN_RECORD, RunFolder
from engine.train.awp import AWP_DEFENCES
from engine.train.distributed import barrier, distributed_session, main_first
from engine.train.study import adversarial_how, merged_fgsm_sets, study_fgsm, train_new_model

log = logging.getLogger(__name__)


def train_model(
    cfg: ExperimentConfig,
    out: str | Path,
    *,
    adversarial_from: str | Path | None = None,
    force: bool = False,
    resume: bool = False,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> dict:
    """Train one model into ``out`` (best.pt, last.pt, split.csv, train.json); with ``adversarial_from``,
    the study's Model B: FGSM images made on that checkpoint merged with the originals.

    Under torchrun every process runs this (DDP, see ``engine.train.distributed``): rank 0 prepares the
    data and the run folder first, holds its lock and alone writes into it; the others then read its cache
    and split.
    """
    _check_awp(cfg)  # before any work
    with distributed_session(cfg.train.device) as ctx:
        if not ctx.is_main:
            on_progress = None  # one progress display: rank 0's
        resuming = RunFolder.check(out, cfg, force=force, resume=resume)
        barrier(ctx)  # every rank has looked at the folder before rank 0 changes it
        with main_first(ctx):
            split_file = RunFolder.saved_split(out, resuming)
            data = prepare_data(
                cfg.data, cfg.train.image_size, split_file=split_file, on_progress=on_progress, cancel=cancel,
                stain_norm=cfg.train.stain_norm, stain_reference=cfg.train.stain_reference,
            )  # fmt: skip
            run = (
                RunFolder.prepare(out, cfg, force=force, resume=resume)
                if ctx.is_main
                else RunFolder(Path(out).expanduser())
            )
        with run, run.logging_to_file() if ctx.is_main else contextlib.nullcontext():
            return _train_into(run, data, cfg, adversarial_from, ctx.is_main, on_progress, cancel)


def _train_into(
    run: RunFolder, data: PreparedData, cfg: ExperimentConfig, adversarial_from, is_main: bool, on_progress, cancel
) -> dict:
    if is_main and not run.path(SPLIT).exists():
        save_split(run.path(SPLIT), data.dataset, data.split)
    train, val = data.arrays("train"), data.arrays("val")
    clean_val = val  # calibration is fitted on clean validation images, whatever the model trains on
    how = adversarial_how(cfg.train)
    if adversarial_from:
        if how["method"] != "clean":
            raise ConfigError(
                f"choose one: {option('adversarial_from')} (the study's merged set) or {option('adversarial')}"
            )
        source, _ = load_checkpoint(adversarial_from)
        source.to(resolve_device(cfg.train.device))
        train, val, how = merged_fgsm_sets(
            source, train, val, attack=study_fgsm(cfg.eps), source_name=str(adversarial_from),
            batch_size=cfg.eval_batch_size, on_progress=on_progress, cancel=cancel,
        )  # fmt: skip
    _, result, meta = train_new_model(
        cfg.train, train, val, classes=data.dataset.classes, how=how, split_hash=split_hash(data.dataset, data.split),
        out_dir=run.root, name="model", synthetic_data=data.dataset.synthetic, calibrate_on=clean_val,
        stain=data.stain, on_progress=on_progress, cancel=cancel,
    )  # fmt: skip
    summary = {**result.summary(meta.training, stored=run.relative), "calibration": meta.calibration}
    if is_main:
        write_json(run.path(TRAIN_RECORD), summary)
    return summary


def _check_awp(cfg: ExperimentConfig) -> None:
    """AWP perturbs the weights against adversarial examples: one model trained without them cannot take it."""
    train = cfg.train
    if train.awp_gamma > 0 and train.adversarial not in AWP_DEFENCES:
        raise ConfigError(
            f"AWP (gamma {train.awp_gamma:g}) perturbs the weights against adversarial examples; choose "
            f"{option('adversarial')} fgsm-rs, pgd or trades, or set the AWP gamma to 0"
        )
