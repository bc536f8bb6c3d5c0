"""The application layer: whole runs on files (data sets, checkpoints, reports), what the CLI calls.

Each module is one workflow of the ``fastsnn`` command over the library (:mod:`fastsnn`):
``train`` (progressive QAT with resumable checkpoints), ``convert``, ``finetune``, ``evaluate``,
``analyze``, ``imports`` and ``demo``; ``checkpoint`` is the safetensors file format and ``sources``
reads the models and data of a run back from its checkpoints.
"""
