"""A cohort's slides on Ray: one task per slide, each the same ``process_slide`` a single process runs, so the
results (and cohort.csv) are the same.

``"local"`` starts a Ray cluster on this machine with ``workers`` CPUs (one slide per CPU at a time) and stops it
at the end; an address ("HEAD:6379") joins a cluster started with ``ray start``, where ``workers`` (if given)
caps the slides in flight. On a cluster every node must read the slides and write ``out`` at the same path (a
shared folder) and have HistoGuard installed. Ray is an optional extra (``pip install histoguard[cluster]``),
imported only here.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from engine.core.errors import Cancelled, ConfigError, EngineError
from engine.core.progress import CancelToken

log = logging.getLogger(__name__)
# each task one thread per library (the task has one CPU); no telemetry from onnxruntime on the workers
TASK_ENV = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "ORT_DISABLE_TELEMETRY": "1"}
POLL_S = 0.5  # how often the driver looks at the cancel token while slides run


def import_ray():
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(
            "--ray needs Ray, which is not installed: pip install histoguard[cluster] (or pip install 'ray>=2.9')"
        ) from exc
    return ray


def run_on_ray(
    process_slide: Callable, jobs: list[tuple[int, tuple]], address: str, workers: int | None, on_result: Callable,
    cancel: CancelToken | None,
) -> None:  # fmt: skip
    """Run ``process_slide(*args)`` (``engine.workflows.cohort``'s) of every (index, args) job as a Ray task;
    ``on_result(index, result)`` on the driver as each finishes (any order: the table keeps input order)."""
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers ({workers}) must be at least 1")
    if not jobs:
        return
    ray = import_ray()
    started = _connect(ray, address, workers)
    try:
        task = ray.remote(num_cpus=1, max_retries=0)(process_slide).options(runtime_env={"env_vars": TASK_ENV})
        limit = workers if workers and address != "local" else len(jobs)
        queue, running = list(jobs), {}
        while queue or running:
            while queue and len(running) < limit:
                i, args = queue.pop(0)
                running[task.remote(*args)] = i
            done, _ = ray.wait(list(running), num_returns=1, timeout=POLL_S)
            if cancel is not None and cancel.cancelled:
                for ref in running:
                    ray.cancel(ref, force=True)
                raise Cancelled("cohort cancelled by the user; finished slides are kept, run again to go on")
            for ref in done:
                i = running.pop(ref)
                on_result(i, _result(ray, ref))
    finally:
        if started:
            ray.shutdown()


def _connect(ray, address: str, workers: int | None) -> bool:
    """Start or join a cluster; True when this call started Ray (so it shuts it down)."""
    if ray.is_initialized():
        return False
    try:
        if address == "local":
            ray.init(
                num_cpus=workers or os.cpu_count() or 1, include_dashboard=False, log_to_driver=False,
                configure_logging=False,
            )  # fmt: skip
        else:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        raise ConfigError(
            f"cannot join the Ray cluster at {address!r} ({exc}); start its head with `ray start --head --port=6379` "
            "and give --ray HEAD:6379, or use --ray local"
        ) from exc
    log.info("Ray cluster: %s CPUs", ray.cluster_resources().get("CPU"))
    return True


def _result(ray, ref) -> dict:
    """A task's result; a task's EngineError (model, settings) is raised as itself; a dead worker fails its slide."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, EngineError):
            raise cause from None
        return {"error": f"{type(cause or exc).__name__}: {cause or exc}"}
    except ray.exceptions.RayError as exc:  # the worker process died (e.g. a crash inside a slide library)
        return {"error": f"the Ray worker died while running this slide ({type(exc).__name__}); run again to retry"}
