"""The same cohort on a local Ray cluster of 2 workers (one slide per task) gives the same cohort.csv, byte for
byte, as the single process (tests/engine/slides/test_cohort's uninterrupted run); Ray is shut down afterwards."""

from __future__ import annotations

import pytest

from engine.workflows.cohort import run_cohort
from tests.engine.slides import test_cohort
from tests.engine.slides.test_cohort import SETTINGS, slide_folders

ray = pytest.importorskip("ray")
cohort, reference = test_cohort.cohort, test_cohort.reference  # fixtures (module scope)


def test_ray_local_with_two_workers_gives_the_same_table(cohort, reference, tmp_path):
    out = tmp_path / "out"
    events = []
    try:
        result = run_cohort([cohort["slides"]], cohort["model"], out, SETTINGS, ray="local", workers=2,
                            on_progress=events.append)  # fmt: skip
    finally:
        assert not ray.is_initialized()  # the cluster it started is stopped
    assert (out / "cohort.csv").read_bytes() == (reference / "cohort.csv").read_bytes()
    assert slide_folders(out) == slide_folders(reference) and result["counts"]["done"] == 5
    assert [e.done for e in events if e.stage == "cohort"] == [0, 1, 2, 3, 4, 5]
