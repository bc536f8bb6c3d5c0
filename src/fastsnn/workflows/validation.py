"""Up-front checks of user-supplied values: each failure is a FastSNNError naming the option and what it accepts.

Run before any work starts, so a bad value costs nothing and leaves no partial output behind.
"""

import math
import numbers
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import FastSNNError


def check_int(option: str, value, low: int, high: int | None = None, *, optional: bool = False) -> None:
    """``value`` is an integer in ``low..high`` (or None when ``optional``)."""
    if value is None and optional:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value < low
        or (high is not None and value > high)
    ):
        accepted = f"{low}..{high}" if high is not None else f">= {low}"
        raise FastSNNError(f"{option} must be an integer {accepted}{' or unset' if optional else ''}, got {value!r}")


def check_float(
    option: str,
    value,
    low: float,
    high: float,
    *,
    low_open: bool = True,
    high_open: bool = False,
    optional: bool = False,
) -> None:
    """``value`` is a finite number in the interval between ``low`` and ``high`` (open ends as flagged)."""
    if value is None and optional:
        return
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise FastSNNError(f"{option} must be a finite number in {interval}, got {value!r}")


def check_choice(option: str, value, accepted: list[str]) -> None:
    """``value`` is one of ``accepted``."""
    if not isinstance(value, str) or value not in accepted:
        raise FastSNNError(f"{option} {value!r} is not known; accepted: {', '.join(accepted)}")


def check_readable_file(option: str, path) -> Path:
    """``path`` names an existing, readable regular file."""
    path = _as_path(option, path)
    if not path.is_file():
        raise FastSNNError(f"{option} {path} does not exist or is not a file")
    if not os.access(path, os.R_OK):
        raise FastSNNError(f"{option} {path} is not readable")
    return path


def check_folder(option: str, path) -> Path:
    """``path`` names an existing, readable folder."""
    path = _as_path(option, path)
    if not path.is_dir():
        raise FastSNNError(f"{option} {path} does not exist or is not a folder")
    if not os.access(path, os.R_OK | os.X_OK):
        raise FastSNNError(f"{option} {path} is not readable")
    return path


def check_writable(option: str, path, *, folder: bool) -> Path:
    """``path`` can be created or overwritten: a ``folder`` or a file, under a writable existing folder.

    Nothing is created here.
    """
    path = _as_path(option, path)
    kind = "folder" if folder else "file"
    if path.exists():
        if path.is_dir() != folder:
            raise FastSNNError(f"{option} {path} exists and is not a {kind}")
        parent = path if folder else path.parent
    else:
        parent = next((p for p in path.parents if p.exists()), Path("."))
        if not parent.is_dir():
            raise FastSNNError(f"{option} {path} cannot be created: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise FastSNNError(f"{option} {path} cannot be written: {parent} is not writable")
    return path


def _as_path(option: str, path) -> Path:
    try:
        text = os.fspath(path)
        if "\x00" in str(text):
            raise ValueError("embedded null byte")
        path = Path(text).expanduser()
        path.exists()  # raises on a name too long for the file system
    except (TypeError, ValueError, OSError) as error:
        raise FastSNNError(f"{option} {str(path)[:200]!r} is not a usable path ({error})") from None
    return path


PathOptions = Mapping[str, "str | Path | Sequence[str | Path] | None"]  # option name -> its path(s), None if unset


def check_paths(
    *,
    read: PathOptions | None = None,
    write: PathOptions | None = None,
    write_folders: PathOptions | None = None,
    data_root=None,
) -> None:
    """Up-front checks of path options (named as typed, e.g. ``--float-checkpoint``) and of ``--data-root``,
    before any work starts or any output is written: inputs are readable files, outputs can be
    written, and no output would overwrite an input."""
    inputs = {}
    for option, paths in (read or {}).items():
        for path in _listed(paths):
            inputs[check_readable_file(option, path).resolve()] = option
    if data_root is not None:
        check_folder("--data-root", data_root)
    for option, paths in (write or {}).items():
        for path in _listed(paths):
            resolved = check_writable(option, path, folder=False).resolve()
            if resolved in inputs:
                raise FastSNNError(
                    f"{option} {path} is also the {inputs[resolved]} input; writing it would destroy that file"
                )
    for option, paths in (write_folders or {}).items():
        for path in _listed(paths):
            check_writable(option, path, folder=True)


def _listed(paths) -> list:
    return list(paths) if isinstance(paths, (list, tuple)) else [] if paths is None else [paths]
