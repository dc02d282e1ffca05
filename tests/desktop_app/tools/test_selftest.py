"""``histoguard --self-test``: what the installers run to prove an installation works. It must pass in a
plain install, pass without PyTorch (the Diagnose edition), and fail loudly when a step fails."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _env(tmp_path: Path, **extra: str) -> dict:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("QT_QPA_PLATFORM", "HISTOGUARD_SETTINGS")}
    return env | {"HOME": str(home), "XDG_STATE_HOME": str(home / "state"), **extra}


def _histoguard(tmp_path: Path, *args: str, torch: bool = True) -> subprocess.CompletedProcess:
    """``histoguard ARGS`` in a fresh process and home; ``torch=False``: as the Diagnose edition (no PyTorch)."""
    entry = ["-m", "desktop_app.launcher"] if torch else [str(ROOT / "tests" / "notorch.py")]
    return subprocess.run(
        [sys.executable, *entry, *args], capture_output=True, text=True, env=_env(tmp_path), cwd=ROOT, timeout=180
    )


def test_self_test_passes_offscreen_and_says_what_it_did(tmp_path):
    """No QT_QPA_PLATFORM given: the self-test chooses offscreen itself (an installer has no screen)."""
    proc = _histoguard(tmp_path, "--self-test")
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    out = proc.stdout
    assert "full edition" in out and "main window shown (8 pages)" in out
    assert "model loaded: selftest.onnx" in out and "CPUExecutionProvider" in out
    assert "predicted " in out and "passed in" in out
    assert "stain normalisation: macenko (mean change" in out and "reinhard (mean change" in out


def test_self_test_passes_without_pytorch(tmp_path):
    """The Diagnose edition: nothing of the full edition is imported, and the self-test still passes."""
    proc = _histoguard(tmp_path, "--self-test", torch=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-2000:]
    assert "diagnose edition" in proc.stdout and "passed in" in proc.stdout
    assert "full-only modules imported: []" in proc.stdout


def test_self_test_fails_with_the_reason_when_the_model_is_refused(qapp, monkeypatch, tmp_path):
    """A model whose weights changed after sealing is refused by the integrity check: exit 1, reason shown."""
    import onnx

    import engine.deploy.tiny as tiny
    from desktop_app.tools.selftest import self_test

    real = tiny.write_tiny_model

    def tampered(path, image_size=32):
        real(path, image_size)
        model = onnx.load(str(path))
        weights = next(t for t in model.graph.initializer if t.name == "weights")
        weights.float_data[:] = []
        weights.raw_data = bytes(len(weights.raw_data))  # all zeros: not the sealed weights
        Path(path).write_bytes(model.SerializeToString())
        return Path(path)

    monkeypatch.setattr(tiny, "write_tiny_model", tampered)
    out = io.StringIO()
    assert self_test(qapp, out=out, timeout_s=60) == 1
    text = out.getvalue()
    assert "FAILED: error dialog 'Read ONNX model'" in text and "selftest.onnx" in text
    assert "passed" not in text


@pytest.mark.parametrize("command", ["train", "models"])
def test_diagnose_edition_says_what_needs_the_full_edition(tmp_path, command):
    args = [command, "--data", str(tmp_path), "--out", str(tmp_path / "run")] if command == "train" else [command]
    proc = _histoguard(tmp_path, *args, torch=False)
    assert proc.returncode == 2
    assert f"`histoguard {command}` needs PyTorch" in proc.stderr and "full edition" in proc.stderr
    assert "Traceback" not in proc.stderr
