"""A cohort of slides in one call: every slide predicted (and with ``robustness`` mapped) into its own sub-folder of
``out``, resumable, on this machine or on a Ray cluster (``engine.workflows.cohort_ray``), with the cohort table
rewritten after every slide.

Built on the same public calls as ``histoguard slide`` (``predict_slide``, ``slide_robustness``,
``write_slide_outputs``). A slide's outputs are written into a temp folder that is then renamed, so its folder
exists only when complete; a later run reuses it when its record (``cohort_slide.json``) matches the model's sha256,
the settings and the slide file's size, and runs the rest. A slide that cannot be read is a failed row, and the
others go on; a model or settings error stops the run. PyTorch is imported only for a robustness map, so the
Diagnose edition runs cohorts without one.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from engine.core.edition import DIAGNOSE, edition, needs_full_edition
from engine.core.errors import Cancelled, ConfigError, EngineError, ModelError, RunFolderError
from engine.core.fileio import sha256_file, write_bytes, write_json, write_text
from engine.core.progress import CancelToken, ProgressCallback, check_cancel, report
from engine.report.cohort import cohort_html
from engine.slides.cohort import CohortSettings, CohortSlide, list_slides
from engine.slides.cohort_table import (
    ARRAYS,
    RECORD,
    UNCALIBRATED,
    cohort_csv,
    done_row,
    expected_record,
    failed_row,
    finished_record,
    pending_row,
    prediction_arrays,
    slide_record,
)

log = logging.getLogger(__name__)
FATAL = (ModelError, ConfigError, RunFolderError, Cancelled)  # wrong for every slide: stop, do not fail each row
_LEFT_OVER = re.compile(r"^\..+\.(tmp|old)$")  # a temp or replaced slide folder a killed run left behind


def run_cohort(
    inputs: list[str | Path],
    model: str | Path,
    out: str | Path,
    settings: CohortSettings | None = None,
    *,
    ray: str | None = None,
    workers: int | None = None,
    on_progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> dict:
    """Run every slide of ``inputs`` (files and folders) not yet done in ``out``; return cohort.json's dict
    ({"rows", "slides", "counts", "files", ...}). ``ray``: None (this process), "local" (a local Ray cluster of
    ``workers`` CPUs) or a cluster's address ("HEAD:6379"), where slide paths and ``out`` must be shared."""
    settings = settings or CohortSettings()
    if settings.robustness and edition() == DIAGNOSE:
        raise ConfigError(needs_full_edition(f"A cohort's robustness map (--robustness {settings.robustness})"))
    out = Path(out)
    slides = list_slides(inputs, exclude=out)
    model_info = _model_info(model)
    out.mkdir(parents=True, exist_ok=True)
    _remove_left_overs(out)
    expected = [expected_record(s, settings.key(), model_info["model_sha256"]) for s in slides]
    records = [finished_record(out / s.folder, e) for s, e in zip(slides, expected)]
    table = _Table(out, slides, model_info, settings, records)
    pending = [i for i, r in enumerate(records) if r is None]
    done = len(slides) - len(pending)
    log.info("cohort of %d slides: %d already done in %s, %d to run", len(slides), done, out, len(pending))
    table.write()
    report(on_progress, "cohort", done, len(slides), unit="slides")
    jobs = [(i, (slides[i], model_info, str(out), settings, expected[i])) for i in pending]
    if ray:
        from engine.workflows.cohort_ray import run_on_ray

        def on_result(i: int, result: dict) -> None:
            table.add(i, result)
            report(on_progress, "cohort", table.finished(), len(slides), unit="slides", message=slides[i].name)

        run_on_ray(process_slide, jobs, ray, workers, on_result, cancel)
    else:
        for i, args in jobs:
            check_cancel(cancel, "cohort")
            table.add(i, process_slide(*args, on_progress=_slide_progress(on_progress, table, i), cancel=cancel))
            report(on_progress, "cohort", table.finished(), len(slides), unit="slides", message=slides[i].name)
    return table.record()


def process_slide(
    slide: CohortSlide, model_info: dict, out: str, settings: CohortSettings, expected: dict, *, on_progress=None,
    cancel: CancelToken | None = None,
) -> dict:  # fmt: skip
    """One slide, start to finish (this is also the Ray task): {"record": cohort_slide.json} when done, {"error":
    text} when the slide cannot be read; model and settings errors and Cancelled are raised."""
    from engine.slides.predict import predict_slide

    start, model = time.perf_counter(), model_info["model"]
    try:
        pred = predict_slide(
            slide.path, model, model_mpp=settings.model_mpp, slide_mpp=settings.slide_mpp,
            min_tissue=settings.min_tissue, overlap=settings.overlap, tta=settings.tta, batch_size=settings.batch_size,
            device=settings.device, on_progress=on_progress, cancel=cancel,
        )  # fmt: skip
        robust = _robustness(slide, model, pred, settings, on_progress, cancel) if settings.robustness else None
        record = slide_record(slide, pred, expected, model_info, time.perf_counter() - start)
        _write_folder(Path(out), slide.folder, {"record": record, "pred": pred, "model": model, "robust": robust})
    except FATAL:
        raise
    except EngineError as exc:
        log.warning("slide %s failed: %s", slide.name, exc)
        return {"error": str(exc)}
    except Exception as exc:  # a damaged file can fail deep inside OpenSlide or Pillow: one row, not the cohort
        log.warning("slide %s failed: %s: %s", slide.name, type(exc).__name__, exc, exc_info=True)
        return {"error": f"{type(exc).__name__}: {exc}"}
    return {"record": record, "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def _robustness(slide, model, pred, settings: CohortSettings, on_progress, cancel) -> dict:
    """Map each tile's flip eps into ``pred.flip_eps`` (imports torch); return how it was made (slide.json's)."""
    from engine.core.config import AttackConfig
    from engine.slides.export import robustness_record
    from engine.workflows.slide_robustness import slide_robustness

    attack = AttackConfig(settings.robustness, settings.max_eps / 255, steps=settings.steps)
    pred.flip_eps = slide_robustness(
        slide.path, model, pred, attack, limit=settings.robust_limit, batch_size=settings.batch_size,
        device=settings.device, on_progress=on_progress, cancel=cancel,
    )  # fmt: skip
    return robustness_record(attack)


def _write_folder(out: Path, name: str, parts: dict) -> None:
    """The slide's files into a temp folder beside ``out/name``, then renamed into place (replacing a stale one)."""
    from engine.slides.export import write_slide_outputs

    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=out))
    try:
        write_slide_outputs(parts["pred"], tmp, parts["model"], robustness=parts["robust"])
        write_bytes(tmp / ARRAYS, prediction_arrays(parts["pred"]))
        write_json(tmp / RECORD, parts["record"])
        target = out / name
        if target.exists():  # a stale result (other model or settings): moved aside, then removed
            old = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".old", dir=out))
            os.replace(target, old / name)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RunFolderError(f"cannot write the results of {name} in {out}: {exc}; choose a writable folder") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _remove_left_overs(out: Path) -> None:
    for entry in out.iterdir():
        if entry.is_dir() and _LEFT_OVER.match(entry.name):
            log.info("removing %s, left by an interrupted run", entry)
            shutil.rmtree(entry, ignore_errors=True)


def _model_info(model: str | Path) -> dict:
    """The model's path, sha256 and input size, checked once before any slide (ModelError when unusable)."""
    from engine.deploy.session import create_session, session_meta

    path = Path(model)
    if not path.is_file():
        raise ModelError(f"{path}: no such model file; give the ONNX file exported by HistoGuard")
    meta = session_meta(create_session(path, device="cpu"), source=path.name)
    return {"model": str(path.resolve()), "model_sha256": sha256_file(path), "image_size": meta.image_size}


def _slide_progress(on_progress, table: _Table, i: int):
    if on_progress is None:
        return None
    stage = f"slide {table.finished() + 1}/{len(table.slides)}"
    return lambda p: on_progress(type(p)(stage, p.done, p.total, p.unit, table.slides[i].name, p.metrics))


class _Table:
    """The cohort table of one run: rows in input order, rewritten (cohort.csv, cohort.html, cohort.json) after
    every slide."""

    def __init__(self, out: Path, slides: list[CohortSlide], model_info: dict, settings, records: list) -> None:
        self.out, self.slides, self.model_info, self.settings = out, slides, model_info, settings
        sha = model_info["model_sha256"]
        self.rows = [pending_row(s, sha) if r is None else done_row(r) for s, r in zip(slides, records)]
        self.records = list(records)
        self.times: list[dict] = [{"seconds": r["seconds"], "reused": True} if r else {} for r in records]
        self.started = _now()

    def add(self, i: int, result: dict) -> None:
        if "record" in result:
            self.records[i], self.rows[i] = result["record"], done_row(result["record"])
            self.times[i] = {"seconds": result["record"]["seconds"], "finished": result["finished"]}
        else:
            self.rows[i] = failed_row(self.slides[i], result["error"], self.model_info["model_sha256"])
            self.times[i] = {"finished": _now()}
        self.write()

    def finished(self) -> int:
        return sum(r["status"] != "pending" for r in self.rows)

    def record(self) -> dict:
        positive = next((r["positive"] for r in self.records if r), None)
        calibrated = [r["summary"]["calibrated"] for r in self.records if r]
        counts = {s: sum(r["status"] == s for r in self.rows) for s in ("done", "failed", "pending")}
        return {
            "model": self.model_info["model"], "model_sha256": self.model_info["model_sha256"],
            "settings": {**self.settings.key(), "batch_size": self.settings.batch_size}, "positive": positive,
            "top_k": self.settings.top_k, "counts": counts, "started": self.started, "updated": _now(),
            "uncertain_note": UNCALIBRATED if calibrated and not calibrated[0] else None,
            "rows": self.rows,
            "slides": [
                {"slide": s.name, "path": str(Path(s.path).resolve()), "folder": s.folder, **t}
                for s, t in zip(self.slides, self.times)
            ],
            "files": {n: str(self.out / n) for n in ("cohort.csv", "cohort.html", "cohort.json")},
        }  # fmt: skip

    def write(self) -> None:
        record = self.record()
        robust = self.settings.robustness
        facts = {**record, "robustness": f"{robust.upper()} up to {self.settings.max_eps}/255" if robust else None}
        rows = [{**r, "seconds": t.get("seconds")} for r, t in zip(self.rows, self.times)]
        write_text(self.out / "cohort.csv", cohort_csv(self.rows))
        write_text(self.out / "cohort.html", cohort_html(rows, facts))
        write_json(self.out / "cohort.json", record)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
