"""Up-front checks of user-supplied paths: each failure is an OptionError naming the option and what is wrong.

Run before any work starts, so a bad value costs nothing and leaves no partial output behind.
"""

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import OptionError


def check_readable_file(option: str, path) -> Path:
    """``path`` names an existing, readable regular file."""
    path = _as_path(option, path)
    if not path.is_file():
        raise OptionError(option, f"{path} does not exist or is not a file")
    if not os.access(path, os.R_OK):
        raise OptionError(option, f"{path} is not readable")
    return path


def check_folder(option: str, path) -> Path:
    """``path`` names an existing, readable folder."""
    path = _as_path(option, path)
    if not path.is_dir():
        raise OptionError(option, f"{path} does not exist or is not a folder")
    if not os.access(path, os.R_OK | os.X_OK):
        raise OptionError(option, f"{path} is not readable")
    return path


def check_writable(option: str, path, *, folder: bool) -> Path:
    """``path`` can be created or overwritten: a ``folder`` or a file, under a writable existing folder.

    Nothing is created here.
    """
    path = _as_path(option, path)
    kind = "folder" if folder else "file"
    if path.exists():
        if path.is_dir() != folder:
            raise OptionError(option, f"{path} exists and is not a {kind}")
        parent = path if folder else path.parent
    else:
        parent = next((p for p in path.parents if p.exists()), Path("."))
        if not parent.is_dir():
            raise OptionError(option, f"{path} cannot be created: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OptionError(option, f"{path} cannot be written: {parent} is not writable")
    return path


def _as_path(option: str, path) -> Path:
    try:
        text = os.fspath(path)
        if "\x00" in str(text):
            raise ValueError("embedded null byte")
        path = Path(text).expanduser()
        path.exists()  # raises on a name too long for the file system
    except (TypeError, ValueError, OSError) as error:
        raise OptionError(option, f"{str(path)[:200]!r} is not a usable path ({error})") from None
    return path


PathOptions = Mapping[str, "str | Path | Sequence[str | Path] | None"]  # option name -> its path(s), None if unset


def check_paths(
    *,
    read: PathOptions | None = None,
    write: PathOptions | None = None,
    write_folders: PathOptions | None = None,
    data_root=None,
) -> None:
    """Up-front checks of path options (named as typed, e.g. ``--out``) and of the data folder,
    before any work starts or any output is written: inputs are readable files, outputs can be
    written, and no output would overwrite an input."""
    inputs = {}
    for option, paths in (read or {}).items():
        for path in _listed(paths):
            inputs[check_readable_file(option, path).resolve()] = option
    if data_root is not None:
        check_folder("data_root", data_root)
    for option, paths in (write or {}).items():
        for path in _listed(paths):
            resolved = check_writable(option, path, folder=False).resolve()
            if resolved in inputs:
                raise OptionError(
                    option,
                    f"{path} is also the {inputs[resolved]} input; writing it would destroy that file",
                )
    for option, paths in (write_folders or {}).items():
        for path in _listed(paths):
            check_writable(option, path, folder=True)


def _listed(paths) -> list:
    return list(paths) if isinstance(paths, (list, tuple)) else [] if paths is None else [paths]
