"""The one error path: engine messages reach the dialog in the app's words (its controls, not the CLI's flags)."""

from __future__ import annotations

import pytest

from desktop_app.errors import GUI_OPTIONS, user_message
from engine.core.config import DataConfig
from engine.core.errors import CLI_OPTIONS, ConfigError, RunFolderError, option


def test_every_option_the_engine_can_name_has_a_name_in_the_app():
    assert set(GUI_OPTIONS) == set(CLI_OPTIONS)
    assert not [name for name, text in GUI_OPTIONS.items() if "--" in text and "command line" not in text]


def test_an_engine_hint_names_the_apps_control_and_the_cli_its_flag(tmp_path):
    exc = RunFolderError(f"{tmp_path} already holds a run; continue it with {option('resume')} or replace it with "
                         f"{option('force')}")  # fmt: skip
    assert str(exc).endswith("continue it with --resume or replace it with --force")
    shown = user_message(exc)
    assert "“Overwrite” on the Train page" in shown and "“Resume if the folder holds this run”" in shown
    assert "--" not in shown and exc.options == ["resume", "force"]


def test_a_hint_with_a_value_keeps_the_value():
    exc = ConfigError(f"no CUDA GPU; choose {option('device', 'cpu')}")
    assert str(exc) == "no CUDA GPU; choose --device cpu"
    assert user_message(exc) == "no CUDA GPU; choose “Device: cpu” on the Train page"


def test_real_engine_errors_reach_the_app_without_flags():
    with pytest.raises(ConfigError) as caught:
        DataConfig()  # no dataset at all
    assert "--data" in str(caught.value) and "--" not in user_message(caught.value)
    assert "File › Open dataset folder…" in user_message(caught.value)
