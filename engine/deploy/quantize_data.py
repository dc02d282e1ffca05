"""``histoguard quantize``: an INT8 copy of an exported ONNX model, calibrated on the validation split of a
dataset and compared with the fp32 file on its test split.

Torch-free on purpose (numpy, Pillow, onnxruntime), like ``blackbox_files``: the lean install that
deploys ONNX files can also quantise them. The split is the run's own ``split.csv`` when the model lies
in a run folder (so no training image is used to judge the copy), else ``--split-file``, else a new
split made with the data options.
"""

from __future__ import annotations

import logging
from pathlib import Path

from engine.core.config import DataConfig
from engine.core.errors import ConfigError, DataError, ModelError, RunFolderError, option
from engine.core.fileio import write_json
from engine.core.progress import CancelToken, ProgressCallback, check_cancel, report
from engine.data.cache import decode_dataset
from engine.data.demo import dataset_root
from engine.data.discover import discover
from engine.data.split import SPLITS, Split, load_split, make_split
from engine.deploy.model_info import onnx_meta
from engine.deploy.model_inputs import prepare_inputs, prepare_pixels
from engine.deploy.quantize import MODES, compare_quantized, quantize_onnx
from engine.runs.folder import SPLIT, RunFolder
from engine.runs.images import fixed_subset

log = logging.getLogger(__name__)
EVAL_SPLIT = "test"


def default_int8_path(model: str | Path) -> Path:
    """model_a.onnx -> model_a.int8.onnx"""
    model = Path(model)
    return model.with_name(f"{model.stem}.int8.onnx")


def quantize_dataset(
    model: str | Path,
    data: DataConfig,
    *,
    out: str | Path | None = None,
    split: str = "val",
    calibration_images: int = 64,
    mode: str = "static",
    seed: int = 0,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> dict:
    """Quantise ``model`` with ``calibration_images`` images (a fixed random subset) of ``split``, compare
    the copy with the fp32 file on the test split, and write the result as JSON beside the copy
    (<out>.json). Returns {"quantization", "comparison", "report", "split_source", ...}."""
    model = Path(model)
    if not model.is_file():
        raise ModelError(f"ONNX model {model} does not exist; choose an .onnx file exported by HistoGuard")
    if split not in SPLITS:
        raise ConfigError(f"split {split!r} is not one of {', '.join(SPLITS)}")
    if mode not in MODES:
        raise ConfigError(f"unknown quantisation mode {mode!r}; choose {' or '.join(MODES)}")
    if calibration_images < 1:
        raise ConfigError(f"give at least 1 calibration image (got {calibration_images}); a few dozen is enough")
    out = Path(out) if out else default_int8_path(model)
    meta = onnx_meta(model)
    classes, size = list(meta.classes), meta.image_size
    dataset = discover(
        dataset_root(data), positive_class=classes[1], magnification=data.magnification,
        patient_regex=data.patient_regex,
    )  # fmt: skip
    if list(dataset.classes) != classes:
        raise ModelError(f"the dataset's classes {list(dataset.classes)} are not the model's {classes}")
    decoded = decode_dataset(dataset, size, on_progress=on_progress, cancel=cancel)
    the_split, split_source = _split(model, data, decoded.dataset)
    cal_idx, test_idx = _indices(the_split, split), _indices(the_split, EVAL_SPLIT)
    cal_idx = [cal_idx[i] for i in fixed_subset(len(cal_idx), calibration_images, seed)]
    check_cancel(cancel, "quantisation")
    report(on_progress, "quantize", 0, 2, unit="steps", message=f"{mode} INT8 with {len(cal_idx)} images")
    info = quantize_onnx(model, out, prepare_inputs(meta, decoded.images[cal_idx]), mode=mode)
    report(on_progress, "quantize", 1, 2, unit="steps", message=f"comparing on {len(test_idx)} test images")
    check_cancel(cancel, "quantisation")
    patients = [decoded.dataset.records[i].patient_id or f"image-{i}" for i in test_idx]
    test_images = prepare_pixels(meta, decoded.images[test_idx])  # the model's stain normalisation
    comparison = compare_quantized(model, out, test_images, decoded.labels[test_idx], groups=patients)
    report(on_progress, "quantize", 2, 2, unit="steps")
    result = {
        "model": str(model),
        "int8_model": str(out),
        "quantization": info,
        "calibration_split": split,
        "evaluation_split": EVAL_SPLIT,
        "split_source": split_source,
        "classes": classes,
        "synthetic_data": decoded.dataset.synthetic,
        "comparison": comparison,
    }
    if split == EVAL_SPLIT:
        result["warning"] = "calibrated on the test split: the accuracy change is measured on calibration images"
        log.warning(result["warning"])
    result["report"] = str(out.with_suffix(".json"))
    write_json(result["report"], _stored(result, out.parent))
    return result


def _stored(result: dict, folder: Path) -> dict:
    """``result`` as written beside the INT8 file: its paths relative to that folder (a run folder copied
    elsewhere still names its files), absolute where they lie outside it."""
    here = RunFolder(folder)
    paths = {k: here.relative(result[k]) for k in ("model", "int8_model", "report")}
    if result["split_source"] != "new":
        paths["split_source"] = here.relative(result["split_source"])
    return {**result, **paths, "quantization": {**result["quantization"], "path": here.relative(result["int8_model"])}}


def _split(model: Path, cfg: DataConfig, dataset) -> tuple[Split, str]:
    """The explicit split file, else the run's split.csv beside the model, else a new split."""
    if cfg.split_file:
        return load_split(cfg.split_file, dataset, level=cfg.split_level, seed=cfg.split_seed), str(cfg.split_file)
    run = RunFolder.of_model(model)
    beside = run.path(SPLIT) if run is not None else model.parent / SPLIT
    if beside.is_file():
        try:
            return load_split(beside, dataset, level=_run_level(run, cfg), seed=cfg.split_seed), str(beside)
        except DataError as exc:
            log.warning("%s; using a new split of the dataset instead", exc)
    return make_split(dataset, ratios=cfg.ratios, seed=cfg.split_seed, level=cfg.split_level), "new"


def _run_level(run: RunFolder | None, cfg: DataConfig) -> str:
    """The split level the run was made with (an image-level run's split.csv puts patients in two splits and
    is still the one that keeps its training images out of the test split), else the data options' level."""
    try:
        return run.read_config().data.split_level if run is not None else cfg.split_level
    except RunFolderError:
        return cfg.split_level


def _indices(split: Split, name: str) -> list[int]:
    idx = split.indices(name)
    if not idx:
        raise DataError(f"the {name} split has no images; use a larger dataset or other {option('split_ratios')}")
    return idx
