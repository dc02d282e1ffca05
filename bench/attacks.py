"""Attack speed: our FGSM and PGD-10 vs torchattacks' on the same DenseNet121 (224 x 224) and images.

    python -m bench.attacks [--batch 8] [--reps 3]

Three ways to run torchattacks are timed beside ours:
- in this process, on the same model object (same allocator settings): compares the implementations;
- in a plain Python process (default allocator, the model as a user builds it): what a user would
  otherwise run, and what HistoGuard's attack path (process settings + folded channels-last copy) replaces.
PGD runs without a random start on both sides, so the two produce comparable images; the agreement
columns compare our adversarial images with torchattacks' (same perturbation sign, same prediction).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import bench_main, ratio, table, timed, verdict

SIZE, EPS, ALPHA, STEPS = 224, 4 / 255, 1 / 255, 10

CHILD = """
import json, sys, torch, torchattacks
sys.path.insert(0, {repo!r})
from bench.common import timed
from engine.models.registry import create_model
model = create_model("densenet121"); model.load_state_dict(torch.load({weights!r})); model.eval()
x, y = torch.load({batch!r})
fgsm = torchattacks.FGSM(model, eps={eps})
pgd = torchattacks.PGD(model, eps={eps}, alpha={alpha}, steps={steps}, random_start=False)
out = {{"fgsm": timed(lambda: fgsm(x, y), reps={reps}), "pgd": timed(lambda: pgd(x, y), reps={reps}, warmup=0)}}
sys.stdout.write(json.dumps(out))
"""


def run(batch: int = 8, reps: int = 3) -> dict:
    import torch
    import torchattacks

    from engine.attacks import fgsm, pgd
    from engine.models.device import cpu_bf16_fast
    from engine.models.registry import create_model

    torch.manual_seed(0)
    model = create_model("densenet121").eval()
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(batch, 3, SIZE, SIZE, generator=g), torch.randint(0, 2, (batch,), generator=g)
    ours = {
        "fgsm": lambda: fgsm(model, x, y, eps=EPS),
        "pgd": lambda: pgd(model, x, y, eps=EPS, alpha=ALPHA, steps=STEPS, random_start=False),
    }
    ta = {
        "fgsm": torchattacks.FGSM(model, eps=EPS),
        "pgd": torchattacks.PGD(model, eps=EPS, alpha=ALPHA, steps=STEPS, random_start=False),
    }
    rows = {}
    for attack in ("fgsm", "pgd"):
        warm = 1 if attack == "fgsm" else 0  # FGSM's warm-up already built every kernel PGD uses
        rows[("ours", attack)] = timed(ours[attack], reps=reps, warmup=warm)
        rows[("torchattacks, same process", attack)] = timed(lambda a=ta[attack]: a(x, y), reps=reps, warmup=warm)
        if cpu_bf16_fast():
            rows[("ours, bf16 autocast", attack)] = timed(lambda f=ours[attack]: _bf16(f), reps=reps, warmup=warm)
    agreement = {a: _agree(model, x, ours[a](), ta[a](x, y)) for a in ("fgsm", "pgd")}
    if cpu_bf16_fast():
        agreement |= {f"{a} bf16": _agree(model, x, _bf16(ours[a]), ours[a]()) for a in ("fgsm", "pgd")}
    plain = _plain_process(model, x, y, reps)
    rows |= {("torchattacks, plain process", a): s for a, s in plain.items()}
    return {"rows": rows, "agreement": agreement, "batch": batch}


def _bf16(fn):
    import torch

    with torch.autocast("cpu", dtype=torch.bfloat16):
        return fn()


def _agree(model, x, a, b) -> tuple[float, float]:
    """(share of pixels with the same perturbation sign, share of images with the same prediction)."""
    import torch

    with torch.no_grad():
        same_pred = (model(a).argmax(1) == model(b).argmax(1)).float().mean().item()
    return ((a - x).sign() == (b - x).sign()).float().mean().item(), same_pred


def _plain_process(model, x, y, reps: int) -> dict:
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        weights, batch = Path(tmp) / "w.pt", Path(tmp) / "batch.pt"
        torch.save(model.state_dict(), weights)
        torch.save((x, y), batch)
        code = CHILD.format(
            repo=str(Path(__file__).resolve().parents[1]),
            weights=str(weights),
            batch=str(batch),
            eps=EPS,
            alpha=ALPHA,
            steps=STEPS,
            reps=reps,
        )
        env = {k: v for k, v in os.environ.items() if k != "GLIBC_TUNABLES"}
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def render(result: dict) -> str:
    rows, n = result["rows"], result["batch"]
    lines = []
    for attack, label in (("fgsm", "FGSM"), ("pgd", f"PGD-{STEPS}")):
        base_same = rows[("torchattacks, same process", attack)]
        base_plain = rows[("torchattacks, plain process", attack)]
        for (who, a), seconds in rows.items():
            if a == attack:
                lines.append([label, who, n / seconds, ratio(base_same, seconds), ratio(base_plain, seconds)])
    agree = "; ".join(
        f"{name}: {100 * s:.2f} % of pixels same sign, {100 * p:.0f} % same prediction"
        for name, (s, p) in result["agreement"].items()
    )
    ours = {a: rows[("ours", a)] for a in ("fgsm", "pgd")}
    checks = "; ".join(
        f"{a.upper()} vs plain torchattacks {verdict(rows[('torchattacks, plain process', a)] / ours[a], 1.3)}, "
        f"vs same process {rows[('torchattacks, same process', a)] / ours[a]:.2f}x"
        for a in ("fgsm", "pgd")
    )
    return (
        f"### Attacks: DenseNet121 at {SIZE} x {SIZE}, batch {n}, eps 4/255\n\n"
        + table(
            [
                "attack",
                "implementation",
                "images/s",
                "speed vs torchattacks (same process)",
                "vs torchattacks (plain process)",
            ],
            lines,
        )
        + f"\n\nAgreement of ours with torchattacks: {agree}.\n\n{checks}.\n"
    )


def main(argv: list[str] | None = None) -> int:
    return bench_main(__doc__, run, render, argv, batch=8, reps=3)


if __name__ == "__main__":
    raise SystemExit(main())
