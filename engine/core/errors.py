"""Typed errors: every message says what is wrong and what to do about it."""

from __future__ import annotations


class EngineError(Exception):
    """Base class of all errors the engine raises on purpose.

    The CLI prints ``str(error)`` on one line and exits non-zero; the GUI shows it in its error dialog.
    """


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
    """The run folder exists, is not writable, or does not hold what was expected."""


class ConfigError(EngineError):
    """A configuration value is invalid."""


class Cancelled(EngineError):
    """The user cancelled a long operation; partial results are kept where the message says."""


class SlideError(DataError):
    """A whole-slide image cannot be opened or read."""
