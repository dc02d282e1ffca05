"""``python -m bench.stain --quick``: each model is trained on the real IDC patches (normalised by the project's
pipeline when it asks for it), evaluated on every stain-shifted copy of the test patches, and the table written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_stain_quick_trains_each_model_and_writes_the_table(tmp_path, shared_data):
    cmd = [sys.executable, "-m", "bench.stain", "--quick", "--models", "none,reinhard", "--out", str(tmp_path)]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads((tmp_path / "stain.json").read_text())
    md = (tmp_path / "stain.md").read_text()
    assert list(report["results"]) == ["none", "reinhard"] and md in out.stdout
    assert "| model | clean | hed_h+ | hed_e+ | in_lab | reinhard_lab | macenko_lab | worst shifted |" in md
    none, reinhard = report["results"]["none"], report["results"]["reinhard"]
    assert none["stain"] is None and reinhard["stain"]["method"] == "reinhard"
    assert "training images" in reinhard["stain"]["fitted_on"]
    assert set(reinhard["cells"]) == set(report["conditions"]) and {"balanced_accuracy", "ci"} <= set(
        reinhard["cells"]["reinhard_lab"]
    )
