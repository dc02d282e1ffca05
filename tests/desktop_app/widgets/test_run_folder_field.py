"""Where a training run goes: the field says what the folder holds, in the page's words; a folder another
process is writing is refused before anything starts."""

from __future__ import annotations

import pytest

from desktop_app.widgets.run_folder_field import RunFolderField
from engine.core.config import DataConfig, ExperimentConfig, TrainConfig
from engine.core.errors import RunFolderError
from engine.core.fileio import write_text
from engine.runs.folder import RunFolder

CONFIG = ExperimentConfig(DataConfig(data="x"), TrainConfig())


@pytest.fixture
def field(qtbot, settings):
    widget = RunFolderField(settings)
    qtbot.addWidget(widget)
    return widget


def test_the_field_says_what_the_folder_holds(field, tmp_path):
    field.set_path(tmp_path / "new")
    assert field.refresh(CONFIG) == "new" and field.plan(CONFIG) == (False, False)
    RunFolder.prepare(tmp_path / "run", CONFIG).release()
    field.set_path(tmp_path / "run")
    assert field.refresh(CONFIG) == "resumable" and "can be resumed" in field.state_label.text()
    assert field.plan(CONFIG) == (True, False)  # "Resume" is ticked by default
    write_text(tmp_path / "run" / "report.json", "{}")
    assert field.refresh(CONFIG) == "finished"
    with pytest.raises(RunFolderError, match="New folder"):
        field.plan(CONFIG)
    field.overwrite_box.setChecked(True)
    assert field.plan(CONFIG) == (False, True)


def test_a_folder_being_written_is_refused(field, tmp_path):
    writer = RunFolder.prepare(tmp_path / "run", CONFIG)
    try:
        field.set_path(tmp_path / "run")
        assert field.refresh(CONFIG) == "locked" and "writing a run in this folder now" in field.state_label.text()
        field.overwrite_box.setChecked(True)  # not even overwriting: another process is writing there
        with pytest.raises(RunFolderError, match="writing a run in this folder now"):
            field.plan(CONFIG)
    finally:
        writer.release()
    assert field.refresh(CONFIG) == "resumable"
