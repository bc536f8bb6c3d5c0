"""Archives that try to escape their folder, corrupt archives, and hash-pinned CIFAR tarballs."""

from __future__ import annotations

import io
import tarfile
import zipfile

import pytest

import fastsnn.data.torchvision_sets as torchvision_sets
from fastsnn.data import load_dataset
from fastsnn.data.integrity import safe_extract, sha256_of, verify_sha256
from fastsnn.errors import DataError


def write_tar(path, members, mode="w:gz"):
    """``members``: (name, kind, payload) with kind file / dir / symlink / hardlink / fifo."""
    with tarfile.open(path, mode) as tar:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
                continue
            info.type = {
                "dir": tarfile.DIRTYPE,
                "symlink": tarfile.SYMTYPE,
                "hardlink": tarfile.LNKTYPE,
                "fifo": tarfile.FIFOTYPE,
            }[kind]
            info.linkname = payload.decode() if payload else ""
            tar.addfile(info)
    return path


def write_zip(path, members):
    with zipfile.ZipFile(path, "w") as zipped:
        for name, kind, payload in members:
            info = zipfile.ZipInfo(name)
            if kind == "symlink":
                info.external_attr = 0o120777 << 16
            zipped.writestr(info, payload)
    return path


HOSTILE = [
    ([("../evil.txt", "file", b"x")], "outside"),
    ([("data/../../evil.txt", "file", b"x")], "outside"),
    ([("/tmp/evil-absolute.txt", "file", b"x")], "absolute"),
    ([("data/link", "symlink", b"/etc/passwd")], "link"),
    ([("data/ok.txt", "file", b"x"), ("data/hard", "hardlink", b"data/ok.txt")], "link"),
    ([("data/pipe", "fifo", b"")], "special"),
]


@pytest.mark.parametrize("members, reason", HOSTILE)
def test_hostile_tar_is_refused_and_nothing_is_written(tmp_path, members, reason):
    archive = write_tar(tmp_path / "evil.tar.gz", members)
    target = tmp_path / "target"
    with pytest.raises(DataError, match=f"evil.tar.gz.*{reason}"):
        safe_extract(archive, target)
    assert list(target.iterdir()) == [] and not (tmp_path / "evil.txt").exists()


@pytest.mark.parametrize(
    "members, reason", [m for m in HOSTILE if all(kind in ("file", "symlink") for _, kind, _ in m[0])]
)
def test_hostile_zip_is_refused_and_nothing_is_written(tmp_path, members, reason):
    archive = write_zip(tmp_path / "evil.zip", members)
    target = tmp_path / "target"
    with pytest.raises(DataError, match=f"evil.zip.*{reason}"):
        safe_extract(archive, target)
    assert list(target.iterdir()) == []


@pytest.mark.parametrize("writer, name", [(write_tar, "good.tar.gz"), (write_zip, "good.zip")])
def test_good_archive_is_extracted(tmp_path, writer, name):
    archive = writer(
        tmp_path / name,
        [("data/", "dir", b""), ("data/a.txt", "file", b"hello")]
        if writer is write_tar
        else [("data/a.txt", "file", b"hello")],
    )
    assert safe_extract(archive, tmp_path / "target") == [tmp_path / "target" / "data"]
    assert (tmp_path / "target" / "data" / "a.txt").read_bytes() == b"hello"


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_truncated_archive_names_the_file_and_writes_nothing(tmp_path, cut):
    archive = write_tar(tmp_path / "data.tar.gz", [(f"data/{i}.bin", "file", bytes(range(256)) * 64) for i in range(8)])
    payload = archive.read_bytes()
    archive.write_bytes(payload[: int(len(payload) * cut)])
    with pytest.raises(DataError, match="data.tar.gz is corrupt or truncated"):
        safe_extract(archive, tmp_path / "target")
    assert list((tmp_path / "target").iterdir()) == []


def test_verify_sha256_names_file_and_both_hashes(tmp_path):
    path = tmp_path / "file.bin"
    path.write_bytes(b"abc")
    verify_sha256(path, sha256_of(path), what="The file", remedy="fetch it again")
    with pytest.raises(DataError, match=rf"The file {path} has sha256 {sha256_of(path)}, expected 00; fetch it again"):
        verify_sha256(path, "00", what="The file", remedy="fetch it again")


def test_cifar_archive_is_hash_checked_then_extracted(tmp_path, make, cifar_md5s_of, monkeypatch):
    staging = tmp_path / "staging"
    written = make.write_cifar(staging, "cifar10")
    cifar_md5s_of("cifar10", written["md5"])
    root = tmp_path / "root"
    (root / "cifar10").mkdir(parents=True)
    archive = root / "cifar10" / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(staging / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    with pytest.raises(DataError, match="cifar-10-python.tar.gz has sha256 .* not the official"):
        load_dataset("cifar10", train=False, root=root)
    assert not (root / "cifar10" / "cifar-10-batches-py").exists(), "nothing extracted from an unverified archive"
    monkeypatch.setitem(torchvision_sets.CIFAR_ARCHIVE_SHA256, "cifar10", sha256_of(archive))
    assert len(load_dataset("cifar10", train=False, root=root)) == len(written["test"][1])
