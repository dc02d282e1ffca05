"""Black-box benchmark: the Square attack (queries only, onnxruntime, no torch) on a run's ONNX model over
a labelled folder, at several eps, beside the clean accuracy.

    python -m bench.blackbox RUN_DIR [--model a] [--data DIR] [--eps 4,8,16,32] [--queries 300] [--limit 40]

Without ``--data`` the synthetic demo set is used. Prints one Markdown table and checks that torch was
never imported.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from engine.core.config import DataConfig
from engine.deploy.blackbox import blackbox_images
from engine.runs.images import ImageSource


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path)
    p.add_argument("--model", default="a", help="which model of the run: a, b or c")
    p.add_argument("--data", help="labelled folder (default: the synthetic demo set)")
    p.add_argument("--eps", default="4,8,16,32", help="eps values in /255")
    p.add_argument("--queries", type=int, default=300)
    p.add_argument("--limit", type=int, default=40)
    a = p.parse_args()
    onnx = a.run / f"model_{a.model.lower()}.onnx"
    data = DataConfig(data=a.data) if a.data else DataConfig(demo=True)
    eps = [int(k) / 255 for k in a.eps.split(",")]
    t0 = time.perf_counter()
    r = blackbox_images(onnx, ImageSource(data=data), eps_values=eps, n_queries=a.queries, limit=a.limit, seed=0)
    took = time.perf_counter() - t0
    out = [
        f"Square attack on {onnx} ({r['provider']}), {r['n_images']} images, {a.queries} queries, p_init "
        f"{r['p_init']}; {took:.0f} s; torch imported: {'torch' in sys.modules}\n",
        "| eps | accuracy | missed-cancer rate | attack success | mean queries |",
        "|---|---|---|---|---|",
    ]
    for row in r["results"]:
        cells = [row["accuracy"], row["missed_cancer_rate"], row["attack_success_rate"]]
        text = ["—" if v is None else f"{v:.3f}" for v in cells]
        mq = "—" if row["mean_queries"] is None else f"{row['mean_queries']:.0f}"
        out.append(f"| {round(row['eps'] * 255)}/255 | " + " | ".join(text) + f" | {mq} |")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
