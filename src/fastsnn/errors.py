"""Exceptions that carry a user-facing, actionable message.

The CLI prints ``str(error)`` of any :class:`FastSNNError` as one line and
exits with status 2; anything else is a bug and keeps its traceback.
"""


class FastSNNError(Exception):
    """Base class: a problem with the user's input, data or environment."""


class DataError(FastSNNError):
    """A data set is missing, corrupt, or does not match what was asked."""


class ConversionError(FastSNNError):
    """A model contains something the quantizer or converter cannot represent."""


class CheckpointError(FastSNNError):
    """A checkpoint is missing, corrupt, or does not match the model it rebuilds."""


class TrainingInterrupted(Exception):
    """Training stopped on request (Ctrl-C) after saving a checkpoint; the CLI exits with status 130."""
