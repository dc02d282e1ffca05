"""Typed errors: every message says what is wrong and what to do about it, in words for people.

Where the remedy is a setting the user can change, the message names it with ``option("force")`` instead of a
command-line flag: ``str(error)`` spells it as the CLI's flag (``--force``, also what the engine's logs show),
and ``error.render(names)`` as a face chooses, so the desktop app names its own control ("“Overwrite” on
the Train page") instead of a flag the app does not have.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# option -> how the command line spells it (the default rendering)
CLI_OPTIONS = {
    "data": "--data PATH",
    "demo": "--demo",
    "force": "--force",
    "resume": "--resume",
    "device": "--device",
    "positive_class": "--positive-class",
    "patient_regex": "--patient-regex",
    "magnification": "--magnification",
    "split_file": "--split-file",
    "split_ratios": "--split-ratios",
    "split_level": "--split-level",
    "weights": "--weights",
    "model_mpp": "--model-mpp",
    "slide_mpp": "--slide-mpp",
    "adversarial": "--adversarial",
    "adversarial_from": "--adversarial-from",
    "bootstrap_resamples": "--bootstrap",
    "sigma": "--sigma",
    "export": "`histoguard export --model <run>/model_x/best.pt --out <file>.onnx`",
}
_OPTION = re.compile("\ue000([a-z_]+)(?:=([^\ue001]*))?\ue001")


def option(name: str, value: str | None = None) -> str:
    """A placeholder for setting ``name`` (set to ``value``, when the remedy is one value) inside an error message,
    rendered by ``EngineError.render``: "--weights none" on the command line."""
    if name not in CLI_OPTIONS:
        raise KeyError(f"unknown option {name!r}")
    return f"\ue000{name}" + ("" if value is None else f"={value}") + "\ue001"


def _spell(match: re.Match, names: Mapping[str, str]) -> str:
    name, value = match.group(1), match.group(2)
    if name in names:
        return names[name].format(value=value or "")
    return CLI_OPTIONS[name] + ("" if value is None else f" {value}")


class EngineError(Exception):
    """Base class of all errors the engine raises on purpose.

    The CLI prints ``str(error)`` on one line and exits non-zero; the GUI shows ``error.render(its names)`` in
    its error dialog.
    """

    @property
    def template(self) -> str:
        """The message with its option placeholders, to embed in another error's message."""
        return str(self.args[0]) if self.args else ""

    @property
    def options(self) -> list[str]:
        """The settings the message names, in order."""
        return [m.group(1) for m in _OPTION.finditer(self.template)]

    def render(self, names: Mapping[str, str] | None = None) -> str:
        """The message with each option spelled as ``names`` says ("{value}" in a name: the value asked for),
        the CLI's flag where it says nothing."""
        names = names or {}
        return _OPTION.sub(lambda m: _spell(m, names), self.template)

    def __str__(self) -> str:
        return self.render()


def message(exc: BaseException) -> str:
    """``exc``'s message for embedding in another EngineError (its option placeholders kept)."""
    return exc.template if isinstance(exc, EngineError) else str(exc)


class DataError(EngineError):
    """The dataset, a manifest or the split cannot be used as given."""


class DecodeError(DataError):
    """One image file cannot be decoded (corrupt, truncated, not an image, too large)."""


class ModelError(EngineError):
    """A model name, weights file or checkpoint is unknown, missing or inconsistent."""


class ModelIntegrityError(ModelError):
    """An ONNX model does not match its recorded hashes or its own metadata: it is not opened."""


class AttackError(EngineError):
    """An attack was called with invalid parameters."""


class ExportError(EngineError):
    """ONNX export failed or the exported model does not match the torch model."""


class RunFolderError(EngineError):
    """The run folder exists, is not writable, is being written by another process, or lacks what was expected."""


class ConfigError(EngineError):
    """A configuration value is invalid."""


class Cancelled(EngineError):
    """The user cancelled a long operation; partial results are kept where the message says."""


class SlideError(DataError):
    """A whole-slide image cannot be opened or read."""
