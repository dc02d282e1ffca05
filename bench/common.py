"""What every benchmark shares: the machine header, median timing, markdown tables, the shared data."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DENSENET_GFLOP_224 = 5.67  # forward pass per image at 224 x 224 (2.9 GMAC, the published figure for DenseNet121)


def shared_data() -> Path | None:
    """``$HISTOGUARD_SHARED_DATA`` or ../shared/data beside the repository, when it is there."""
    path = Path(os.environ.get("HISTOGUARD_SHARED_DATA", REPO.parent / "shared" / "data"))
    return path if path.is_dir() else None


def setup(threads: int | None = None) -> None:
    """The process settings HistoGuard's own entry points apply (malloc thresholds), quiet logs, and ``threads``
    torch CPU threads when given (1 where other jobs share the cores)."""
    import logging

    from engine.core.runtime import tune_malloc

    tune_malloc()
    logging.basicConfig(level=logging.WARNING)
    if threads:
        import torch

        torch.set_num_threads(threads)


def header(title: str = "HistoGuard benchmarks") -> str:
    from engine.models.device import describe_runtime

    info = describe_runtime()
    gpu = info["cuda"] or "none"
    return (
        f"## {title}\n\n"
        f"- machine: {info['cpu']}, {info['cores']} cores; torch threads {info['torch_threads']}; "
        f"CPU kernels {info['cpu_capability']}, native bf16: {'yes' if info['cpu_bf16'] else 'no'}; GPU: {gpu}\n"
        f"- torch {info['torch']}, onnxruntime {info['onnxruntime']}, Python {info['python']}; "
        f"malloc thresholds raised: {'yes' if info['malloc_tuned'] else 'no'}\n"
        "- every figure is the median of several repetitions after a warm-up run\n"
    )


def timed(fn: Callable[[], object], reps: int = 3, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds over ``reps`` runs, after ``warmup`` untimed runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def table(headers: list[str], rows: list[list[object]]) -> str:
    def cell(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def verdict(value: float, target: float) -> str:
    return f"{'met' if value >= target else 'MISSED'} (target >= {target:g}x)"


def bench_main(doc: str, run: Callable[..., object], render: Callable[[object], str], argv=None, **options) -> int:
    """The command line of one benchmark: ``--NAME`` for each keyword option (its default's type), then
    HistoGuard's process settings, ``run(**options)``, and the header and table on stdout."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    for name, default in options.items():
        parser.add_argument(f"--{name}", type=type(default), default=default)
    args = parser.parse_args(argv)
    setup()
    sys.stdout.write(header() + "\n" + render(run(**vars(args))) + "\n")
    return 0


def idc_manifest(given=None) -> Path | None:
    """``given`` (a --data path), else the shared IDC patches' manifest; None (with a line on stderr) when it is
    not there."""
    import sys

    shared = shared_data()
    path = Path(given) if given else (shared / "idc_subset" / "MANIFEST.csv" if shared else None)
    if path is None or not path.exists():
        sys.stderr.write(f"IDC patches not found ({path}); set HISTOGUARD_SHARED_DATA or pass --data\n")
        return None
    return path
