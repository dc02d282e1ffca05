"""Process speed settings and the precision choice."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from engine.core.config import TrainConfig
from engine.core.errors import ConfigError
from engine.models import device


def test_malloc_tuning_applies_once_in_a_glibc_process_and_can_be_turned_off():
    code = (
        "from engine.core import runtime; a = runtime.tune_malloc(); b = runtime.tune_malloc(); "
        "import sys; sys.stdout.write(f'{a} {b}')"
    )
    on = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    off = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**__import__("os").environ, "HISTOGUARD_MALLOC_TUNING": "0"},
    ).stdout
    if sys.platform.startswith("linux") and __import__("platform").libc_ver()[0] == "glibc":
        assert on == "True True"
    assert off == "False False"


def test_runtime_module_does_not_import_torch():
    code = "import sys, engine.core.runtime, engine.core.config; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@pytest.mark.parametrize(
    ("precision", "native", "want"),
    [("fp32", True, None), ("auto", True, torch.bfloat16), ("auto", False, None), ("bf16", False, torch.bfloat16)],
)
def test_cpu_precision_uses_bf16_only_where_the_cpu_runs_it_natively(monkeypatch, precision, native, want):
    monkeypatch.setenv("HISTOGUARD_CPU_BF16", "1" if native else "0")
    assert device.autocast_dtype(torch.device("cpu"), precision) == want


def test_unknown_precision_is_a_config_error():
    with pytest.raises(ConfigError, match="precision"):
        TrainConfig(precision="fp8")
    with pytest.raises(ConfigError, match="precision"):
        device.autocast_dtype(torch.device("cpu"), "half")


def test_describe_runtime_names_the_versions():
    info = device.describe_runtime()
    assert info["torch"] == torch.__version__ and info["cores"] >= 1 and isinstance(info["cpu_bf16"], bool)
