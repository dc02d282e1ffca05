"""How long the desktop app takes to open: process start -> main window shown and painted (median of N).

    python bench/startup.py [--runs 5]

Runs offscreen with throw-away settings; "warm" means the files are already in the OS cache (the first
run warms it and is reported separately).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

CHILD = (
    "from desktop_app.app import build_window, get_app\n"
    "app = get_app(); w = build_window(); w.show(); app.processEvents(); w.grab()\n"
    "import sys; sys.stdout.write('shown\\n'); sys.stdout.flush()\n"
)


def once(env: dict) -> float:
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, env=env, text=True)
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - t0
    proc.wait()
    if line.strip() != "shown":
        raise SystemExit(f"the app did not open (exit code {proc.returncode})")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen"),
            "HISTOGUARD_SETTINGS": os.path.join(tmp, "settings.ini"),
            "HISTOGUARD_LOG_DIR": tmp,
        }
        first = once(env)
        times = [once(env) for _ in range(args.runs)]
    sys.stdout.write(
        f"window shown: first {first:.2f} s; warm median {statistics.median(times):.2f} s "
        f"(min {min(times):.2f}, max {max(times):.2f}, {args.runs} runs)\n"
    )


if __name__ == "__main__":
    main()
