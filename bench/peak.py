"""The machine's peak: float32 and bf16 matrix-multiply GFLOP/s (torch, all threads), the yardstick for
the inference and training figures.

    python -m bench.peak
"""

from __future__ import annotations

from bench.common import bench_main, table, timed


def gemm_gflops(dtype_name: str, n: int = 2048, reps: int = 5) -> float:
    import torch

    dtype = getattr(torch, dtype_name)
    a, b = torch.randn(n, n).to(dtype), torch.randn(n, n).to(dtype)
    seconds = timed(lambda: torch.mm(a, b), reps=reps, warmup=1)
    return 2 * n**3 / seconds / 1e9


def run() -> dict:
    from engine.models.device import cpu_bf16_fast

    native = cpu_bf16_fast()
    # without native bf16 a 2048 GEMM takes about a minute: a smaller one shows the same rate
    bf16 = gemm_gflops("bfloat16") if native else gemm_gflops("bfloat16", n=512, reps=1)
    return {"fp32": gemm_gflops("float32"), "bf16": bf16, "bf16_native": native}


def render(peak: dict) -> str:
    note = "" if peak["bf16_native"] else " (no native bf16 on this CPU: a slow fallback)"
    rows = [["float32", peak["fp32"]], ["bf16" + note, peak["bf16"]]]
    return "### Peak: 2048 x 2048 GEMM\n\n" + table(["dtype", "GFLOP/s"], rows)


def main(argv: list[str] | None = None) -> int:
    return bench_main(__doc__, run, render, argv)


if __name__ == "__main__":
    raise SystemExit(main())
