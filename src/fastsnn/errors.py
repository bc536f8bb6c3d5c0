"""Exceptions: one hierarchy for what a user can get wrong, apart from programming mistakes.

A :class:`FastSNNError` is a problem with the user's input, data or environment; its message is one
actionable line naming the culprit (option, file, module path). The CLI prints it and exits with
status 2. Misuse of the API by code (a tensor of the wrong shape, an argument of the wrong kind)
raises Python's own ``TypeError`` / ``ValueError`` and keeps its traceback, as any other bug.
"""


class FastSNNError(Exception):
    """Base class: a problem with the user's input, data or environment."""


class OptionError(FastSNNError, ValueError):
    """An option's value is outside what it accepts; ``option`` is its name (a config field).

    Also a ``ValueError``, so code that validates values the Python way catches it too.
    """

    def __init__(self, option: str, detail: str):
        super().__init__(f"{option} {detail}")
        self.option, self.detail = option, detail


class DataError(FastSNNError):
    """A data set is missing, corrupt, or does not match what was asked."""


class ConversionError(FastSNNError):
    """A model contains something the quantizer or converter cannot represent."""


class CheckpointError(FastSNNError):
    """A checkpoint is missing, corrupt, or does not match the model it rebuilds."""


class TrainingInterrupted(Exception):
    """Training stopped on request (Ctrl-C) after saving a checkpoint; the CLI exits with status 130."""
