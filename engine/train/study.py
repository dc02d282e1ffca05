"""The two training recipes of the study, shared by ``histoguard experiment`` and ``histoguard train``:
a new model trained on a set, and the study's merged set (originals + FGSM images made on a source model).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, replace
from pathlib import Path

import torch
from torch import nn

from engine.attacks.perturbation import adversarial_images
from engine.core.config import AttackConfig, TrainConfig
from engine.core.metadata import ModelMeta
from engine.core.progress import CancelToken, ProgressCallback
from engine.data.arrays import ArraySet, concat
from engine.models.checkpoint import make_metadata, weights_sha256
from engine.models.device import resolve_device
from engine.models.registry import create_model
from engine.train.awp import AWP_DEFENCES
from engine.train.calibrate import calibrate_checkpoint
from engine.train.distributed import env_context
from engine.train.loop import TrainResult, fit

log = logging.getLogger(__name__)
EMA_WARMUP = "decay of update n: min(decay, (1 + n) / (10 + n))"


def study_fgsm(eps: float) -> AttackConfig:
    """The study's FGSM for Model B's merged set: one step on cross-entropy, the loss the study attacked with."""
    return AttackConfig("fgsm", eps, loss="ce")


def merged_fgsm_sets(
    source: nn.Module,
    train: ArraySet,
    val: ArraySet,
    *,
    attack: AttackConfig,
    source_name: str,
    batch_size: int = 64,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> tuple[ArraySet, ArraySet, dict]:
    """Originals + adversarial images (the study's FGSM) made on ``source`` (train and val), and the 'how
    trained' record."""
    device = next(source.parameters()).device
    stage = f"{attack.info.short} from {source_name}"
    adv = [
        adversarial_images(source, s, attack, device, batch_size, f"{stage} ({what})", on_progress, cancel)
        for s, what in ((train, "train"), (val, "val"))
    ]
    how = {
        "method": "merged-fgsm",
        "eps": attack.eps,
        "attack": attack.method,
        "attack_source": source_name,
        "source_weights_sha256": weights_sha256(source),
    }
    return concat(train, adv[0]), concat(val, adv[1]), how


def defence_config(base: TrainConfig, defence: str, eps: float) -> tuple[TrainConfig, dict]:
    """Model C's training configuration: ``base`` with on-the-fly adversarial training at ``eps`` (Gaussian noise
    training at ``base.noise_sigma``), and its 'how trained' record."""
    cfg = replace(base, adversarial=defence, adv_eps=eps)
    return cfg, adversarial_how(cfg)


def adversarial_how(cfg: TrainConfig) -> dict:
    """The 'how trained' record of on-the-fly adversarial training with ``cfg`` ({"method": "clean"} if none;
    {"method": "gaussian", "sigma": ...} for Gaussian noise training)."""
    if cfg.adversarial == "none":
        return {"method": "clean"}
    if cfg.adversarial == "gaussian":  # what `histoguard certify` reads as the model's own sigma
        return {
            "method": "gaussian",
            "sigma": cfg.noise_sigma,
            "selected_by": "balanced accuracy on validation images with the training noise",
        }
    how = {
        "method": "adversarial-training",
        "defence": cfg.adversarial,
        "eps": cfg.adv_eps,
        "steps": 1 if cfg.adversarial == "fgsm-rs" else cfg.adv_steps,
        "adv_ratio": cfg.adv_ratio,
        "selected_by": "PGD balanced accuracy on validation images",
    }
    if cfg.adversarial == "trades":
        how["trades_beta"] = cfg.trades_beta
    return how


def lever_record(cfg: TrainConfig) -> dict:
    """The training levers ``cfg`` switches on (EMA of the weights, HED stain jitter, AWP), as the model's 'how
    trained' record holds them; {} when none is (AWP counts only for the adversarial defences it perturbs)."""
    record: dict = {}
    if cfg.ema_decay > 0:
        record["ema"] = {"decay": cfg.ema_decay, "warmup": EMA_WARMUP, "kept": "the EMA weights"}
    if cfg.hed_scale or cfg.hed_shift:
        record["hed_jitter"] = {"scale": cfg.hed_scale, "shift": cfg.hed_shift, "units": "optical density"}
    if cfg.awp_gamma > 0 and cfg.adversarial in AWP_DEFENCES:
        record["awp"] = {"gamma": cfg.awp_gamma, "warmup_epochs": cfg.awp_warmup}
    return record


def train_new_model(
    cfg: TrainConfig,
    train: ArraySet,
    val: ArraySet,
    *,
    classes: tuple[str, str],
    how: dict,
    split_hash: str,
    out_dir: Path,
    name: str,
    synthetic_data: bool = False,
    calibrate_on: ArraySet | None = None,
    stain: dict | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> tuple[nn.Module, TrainResult, ModelMeta]:
    """A freshly initialised ``cfg.arch`` (seeded), trained by ``fit`` into ``out_dir`` and calibrated by
    temperature scaling on ``calibrate_on`` (default ``val``; the study's Model B passes the clean validation
    images, not its merged set); returns the model on its training device, the training result and the
    metadata stored with its kept checkpoint, whose 'how trained' (``meta.training``) is ``how`` with the levers of
    ``lever_record``. ``stain``: the stain reference ``train`` and ``val`` were normalised to, recorded in the
    metadata (``ModelMeta.stain_norm``) so every later use of the model normalises its inputs alike."""
    how = {**how, **lever_record(cfg)}
    torch.manual_seed(cfg.seed)
    model = create_model(cfg.arch, weights=cfg.weights)
    meta = make_metadata(
        cfg.arch,
        classes,
        cfg.image_size,
        how,
        split_hash=split_hash,
        train_config=asdict(cfg),
        model_name=name,
        synthetic_data=synthetic_data,
        **({"mpp": cfg.input_mpp} if cfg.input_mpp else {}),
        stain_norm=stain,
    )
    log.info("training %s (%s) on %d images, validating on %d", name, how["method"], len(train), len(val))
    result = fit(
        model, train, val, cfg, out_dir=out_dir, name=name, metadata=meta, on_progress=on_progress, cancel=cancel
    )
    device = resolve_device(cfg.device)
    model.to(device)
    if env_context().is_main:  # under torchrun rank 0 writes checkpoints
        meta = calibrate_checkpoint(model, meta, result.checkpoint, val if calibrate_on is None else calibrate_on,
                                    device, cfg.batch_size, name=name)  # fmt: skip
    return model, result, meta
