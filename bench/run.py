"""Every speed benchmark in one run, one table each, under one header: ``python -m bench.run``.

    python -m bench.run [--only peak,inference,attacks,training,data,app] [--out results.md]

Each benchmark runs in its own process (clean allocator and thread state, as a user's run would have).
About 10 minutes on a 2-core CPU. The robustness benchmark (accuracy, not speed) is separate:
``python -m bench.robustness``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from bench.common import REPO, header, setup

BENCHES = ("peak", "inference", "attacks", "training", "data", "app")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated subset of " + ",".join(BENCHES))
    parser.add_argument("--out", help="also write the tables to this markdown file")
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(BENCHES)
    unknown = sorted(set(names) - set(BENCHES))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHES)}")
    setup()
    parts = [header()]
    sys.stdout.write(parts[0] + "\n")
    t0 = time.perf_counter()
    failed = []
    for name in names:
        t = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", f"bench.{name}"], cwd=REPO, capture_output=True, text=True, check=False
        )
        body = _without_header(proc.stdout)
        if proc.returncode != 0:
            failed.append(name)
            body += f"\n**bench.{name} failed** (exit {proc.returncode}):\n\n```\n{proc.stderr[-2000:]}\n```\n"
        body += f"\n_{name}: {time.perf_counter() - t:.0f} s_\n"
        parts.append(body)
        sys.stdout.write(body + "\n")
        sys.stdout.flush()
    total = f"\nTotal: {time.perf_counter() - t0:.0f} s for {', '.join(names)}.\n"
    sys.stdout.write(total)
    if args.out:
        Path(args.out).write_text("\n".join(parts) + total)
    return 1 if failed else 0


def _without_header(text: str) -> str:
    """A benchmark's output from its first table title on (the shared header is printed once)."""
    i = text.find("\n### ")
    return text[i + 1 :] if i >= 0 else text


if __name__ == "__main__":
    raise SystemExit(main())
