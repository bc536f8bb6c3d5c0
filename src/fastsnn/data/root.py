"""Where data sets live on disk."""

from __future__ import annotations

import os
from pathlib import Path

from fastsnn.errors import DataError

ENV_VAR = "FASTSNN_DATA"


def default_data_root() -> Path:
    """The data root: ``$FASTSNN_DATA`` if set (and not empty), else ``~/.cache/fastsnn``."""
    value = os.environ.get(ENV_VAR, "").strip()
    if value:
        return Path(value).expanduser()
    return Path.home() / ".cache" / "fastsnn"


def resolve_root(root: str | Path | None) -> Path:
    """``root`` as a ``Path`` (``~`` expanded), or :func:`default_data_root` when ``None``.

    Raises :class:`DataError` for a value that cannot name a folder (not a path, NUL byte, too long).
    """
    try:
        path = default_data_root() if root is None else Path(root).expanduser()
        if "\x00" in str(path):
            raise ValueError("embedded null byte")
        path.exists()  # raises for a name too long for the file system
    except (TypeError, ValueError, OSError) as error:
        raise DataError(f"data root {str(root)[:200]!r} is not a usable path ({error})") from None
    return path
