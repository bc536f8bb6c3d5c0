"""Where data sets live on disk."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "FASTSNN_DATA"


def default_data_root() -> Path:
    """The data root: ``$FASTSNN_DATA`` if set (and not empty), else ``~/.cache/fastsnn``."""
    value = os.environ.get(ENV_VAR, "").strip()
    if value:
        return Path(value).expanduser()
    return Path.home() / ".cache" / "fastsnn"


def resolve_root(root: str | Path | None) -> Path:
    """``root`` as a ``Path`` (``~`` expanded), or :func:`default_data_root` when ``None``."""
    return default_data_root() if root is None else Path(root).expanduser()
