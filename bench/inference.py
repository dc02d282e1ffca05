"""Inference speed of DenseNet121 at 224 x 224, batch 1 and 32, side by side in one process:
torch eager (the model as built) vs torch with HistoGuard's CPU settings (BatchNorm folded, channels-last,
bf16 where the CPU has it) vs onnxruntime on our exported file (full graph optimisation), fp32 and INT8.

    python -m bench.inference [--reps 3]

The weights are untrained (speed does not depend on them); agreement with fp32 is measured on real
BreakHis images when ../shared/data is there, else on random images.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from bench.common import DENSENET_GFLOP_224, bench_main, ratio, shared_data, table, timed, verdict

SIZE = 224


def images(n: int) -> np.ndarray:
    """n float32 NCHW images in [0, 1]: BreakHis images (repeated) when available, else random."""
    from engine.data.decode import decode_image

    root = shared_data()
    files = sorted((root / "breakhis_subset").rglob("*.png")) if root else []
    if not files:
        return np.random.default_rng(0).random((n, 3, SIZE, SIZE), dtype=np.float32)
    arr = np.stack([decode_image(files[i % len(files)], SIZE) for i in range(n)])
    return np.ascontiguousarray(arr.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0


def run(reps: int = 3) -> dict:
    import torch

    from bench.peak import gemm_gflops
    from engine.deploy.quantize import quantize_onnx
    from engine.deploy.session import create_session, session_provider
    from engine.export.onnx_export import export_onnx
    from engine.models.checkpoint import make_metadata
    from engine.models.device import cpu_bf16_fast
    from engine.models.fast import fast_model
    from engine.models.registry import create_model

    torch.manual_seed(0)
    model = create_model("densenet121").eval()
    x32 = images(32)
    batches = {1: x32[:1], 32: x32}
    rows, probs = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "densenet121.onnx"
        meta = make_metadata("densenet121", ("benign", "malignant"), SIZE, {"method": "clean"})
        export_onnx(model, onnx_path, meta, SIZE)
        int8_path = Path(tmp) / "densenet121.int8.onnx"
        quantize_onnx(onnx_path, int8_path, x32[:16], mode="static")
        fp32_session, int8_session = create_session(onnx_path, "cpu"), create_session(int8_path, "cpu")
        fast = fast_model(model)

        def torch_runner(net, amp=None):
            def go(x):
                with torch.inference_mode(), torch.autocast("cpu", dtype=amp, enabled=amp is not None):
                    return torch.softmax(net(torch.from_numpy(x)).float(), 1).numpy()

            return go

        runners = {
            "torch eager fp32 (model as built)": torch_runner(model),
            "torch, BN folded + channels-last fp32": torch_runner(fast),
        }
        if cpu_bf16_fast():
            runners["torch, folded + channels-last + bf16 autocast"] = torch_runner(fast, torch.bfloat16)
        runners["onnxruntime fp32 (ORT_ENABLE_ALL)"] = lambda x: fp32_session.run(["probabilities"], {"image": x})[0]
        runners["onnxruntime INT8 static (QOperator, per-channel)"] = lambda x: int8_session.run(
            ["probabilities"], {"image": x}
        )[0]
        for name, go in runners.items():
            probs[name] = go(x32)
            for bs, x in batches.items():
                seconds = timed(lambda go=go, x=x: go(x), reps=reps * (5 if bs == 1 else 1))
                rows.append({"runtime": name, "batch": bs, "seconds": seconds, "img_s": bs / seconds})
        provider = session_provider(fp32_session)
    return {"rows": rows, "agreement": _agreement(probs), "peak": gemm_gflops("float32"), "provider": provider}


def _agreement(probs: dict) -> dict:
    ref = next(iter(probs.values()))
    return {
        name: (float((p.argmax(1) == ref.argmax(1)).mean()), float(np.abs(p - ref).max()))
        for name, p in list(probs.items())[1:]
    }


def render(result: dict) -> str:
    rows, peak = result["rows"], result["peak"]
    eager = {r["batch"]: r["img_s"] for r in rows if r["runtime"].startswith("torch eager")}
    out = []
    for r in rows:
        gflops = r["img_s"] * DENSENET_GFLOP_224
        agree = result["agreement"].get(r["runtime"])
        out.append(
            [
                r["runtime"],
                r["batch"],
                r["img_s"],
                r["seconds"] * 1000,
                ratio(r["img_s"], eager[r["batch"]]),
                f"{100 * gflops / peak:.0f} %",
                "reference" if agree is None else f"{100 * agree[0]:.0f} % / {agree[1]:.1e}",
            ]
        )
    ort1 = next(r["img_s"] for r in rows if r["runtime"].startswith("onnxruntime fp32") and r["batch"] == 1)
    text = table(
        [
            "runtime",
            "batch",
            "images/s",
            "latency ms",
            "vs eager",
            "of fp32 GEMM peak",
            "same prediction / max prob diff vs eager",
        ],
        out,
    )
    return (
        "### Inference: DenseNet121 at 224 x 224\n\n"
        + text
        + f"\n\nonnxruntime provider: {result['provider']}. fp32 GEMM peak {peak:.0f} GFLOP/s; DenseNet121 forward "
        f"{DENSENET_GFLOP_224} GFLOP/image. onnxruntime fp32 vs torch eager at batch 1: "
        f"{verdict(ort1 / eager[1], 1.5)}.\n"
    )


def main(argv: list[str] | None = None) -> int:
    return bench_main(__doc__, run, render, argv, reps=3)


if __name__ == "__main__":
    raise SystemExit(main())
