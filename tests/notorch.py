"""Run HistoGuard as the Diagnose edition would: PyTorch (and the full edition's other extras) cannot be
imported. ``python tests/notorch.py ARGS...`` is ``histoguard ARGS...`` in such a process; it prints the
modules that were imported anyway, so a test can check that none of them was."""

from __future__ import annotations

import importlib.abc
import sys

FULL_ONLY = ("torch", "torchvision", "triton", "sklearn", "scipy", "matplotlib")


class BlockFullOnly(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in FULL_ONLY:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


if __name__ == "__main__":
    sys.meta_path.insert(0, BlockFullOnly())
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    from desktop_app.launcher import main

    code = main(sys.argv[1:])
    sys.stdout.write(f"full-only modules imported: {sorted(m for m in sys.modules if m.split('.')[0] in FULL_ONLY)}\n")
    sys.exit(code)
