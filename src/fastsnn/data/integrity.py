"""Integrity of fetched files: pinned SHA-256 hashes, and archive extraction that cannot escape its folder."""

from __future__ import annotations

import hashlib
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from fastsnn.errors import DataError


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of the file at ``path``, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    try:
        with Path(path).open("rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
    except OSError as error:
        raise DataError(f"Cannot read {path}: {error.strerror or error}.") from error
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str, *, what: str, remedy: str) -> None:
    """Raise :class:`DataError` (``"<what> <path> has sha256 …, expected …; <remedy>."``) unless the hash matches."""
    actual = sha256_of(path)
    if actual != expected:
        raise DataError(f"{what} {path} has sha256 {actual}, expected {expected}; {remedy}.")


def safe_extract(archive: Path, target: Path) -> list[Path]:
    """Extract a tar (any compression) or zip ``archive`` into folder ``target``; returns the top-level entries made.

    Refused with a :class:`DataError` naming the archive and member, before anything is written: absolute
    paths, ``..`` components, links, and anything but regular files and folders. Extraction goes to a
    temporary folder first, so a corrupt or truncated archive leaves ``target`` as it was.
    """
    archive, target = Path(archive), Path(target)
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target, prefix=".extract-") as staging:
        try:
            if zipfile.is_zipfile(archive):
                _extract_zip(archive, Path(staging))
            else:
                _extract_tar(archive, Path(staging))
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError, zlib.error) as error:
            raise DataError(f"Archive {archive} is corrupt or truncated ({error}); download it again.") from None
        made = []
        for entry in sorted(Path(staging).iterdir()):
            destination = target / entry.name
            if destination.exists():
                raise DataError(f"Extracting {archive} would overwrite {destination}; move it away first.")
            shutil.move(str(entry), destination)
            made.append(destination)
    return made


def _check_member(archive: Path, name: str, *, regular: bool) -> None:
    path = PurePosixPath(name)
    first = path.parts[0] if path.parts else ""
    if path.is_absolute() or name.startswith("\\") or first[1:2] == ":":  # /etc, \\server, C:
        raise DataError(f"Archive {archive} holds member {name!r} with an absolute path; refusing to extract it.")
    if ".." in path.parts or "\\" in name:
        raise DataError(
            f"Archive {archive} holds member {name!r} that points outside the target folder; refusing to extract it."
        )
    if not regular:
        raise DataError(
            f"Archive {archive} holds member {name!r} that is a link or special file; refusing to extract it."
        )


def _extract_tar(archive: Path, staging: Path) -> None:
    with tarfile.open(archive) as tar:
        members = tar.getmembers()  # reads the whole archive: a truncated one fails here
        for member in members:
            _check_member(archive, member.name, regular=member.isfile() or member.isdir())
        tar.extractall(staging, members=members, filter="data")


def _extract_zip(archive: Path, staging: Path) -> None:
    with zipfile.ZipFile(archive) as zipped:
        members = zipped.infolist()
        for member in members:
            mode = member.external_attr >> 16
            _check_member(archive, member.filename, regular=stat.S_IFMT(mode) in (0, stat.S_IFREG, stat.S_IFDIR))
        bad = zipped.testzip()
        if bad is not None:
            raise zipfile.BadZipFile(f"member {bad} fails its CRC check")
        zipped.extractall(staging)
