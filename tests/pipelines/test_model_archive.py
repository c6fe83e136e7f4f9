"""A model archive is extracted only when every member is a plain file or directory inside the target.

The batch transform loads `model.tar.gz` from S3 (pipelines/inference.py); a member that is a link, a
device or a name leaving the target is refused, with an error naming it, before anything is written.
Runs on the container's Python 3.9 too (make test-compat).
"""

import io
import re
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from pipelines.archive import UnsafeArchiveError, extract_archive
from pipelines.inference import load_model_dir


def _file(name: str, data: bytes = b"x") -> "tuple[tarfile.TarInfo, bytes]":
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _link(name: str, target: str, kind: bytes) -> "tuple[tarfile.TarInfo, bytes]":
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, b""


def _special(name: str, kind: bytes) -> "tuple[tarfile.TarInfo, bytes]":
    info = tarfile.TarInfo(name)
    info.type = kind
    return info, b""


# Each unsafe member, after a harmless first member (so a refusal must come before any write).
UNSAFE: dict[str, Callable[[], "tuple[tarfile.TarInfo, bytes]"]] = {
    "parent-relative path '../escaped.txt'": lambda: _file("../escaped.txt"),
    "parent-relative path 'model/../../escaped.txt'": lambda: _file("model/../../escaped.txt"),
    "absolute path '/tmp/escaped.txt'": lambda: _file("/tmp/escaped.txt"),
    "symbolic link 'model.joblib' -> '/etc/passwd'": lambda: _link(
        "model.joblib", "/etc/passwd", tarfile.SYMTYPE
    ),
    "symbolic link 'inside' -> 'features.json'": lambda: _link("inside", "features.json", tarfile.SYMTYPE),
    "hard link 'model.joblib' -> '/etc/passwd'": lambda: _link(
        "model.joblib", "/etc/passwd", tarfile.LNKTYPE
    ),
    "hard link 'copy.json' -> 'features.json'": lambda: _link("copy.json", "features.json", tarfile.LNKTYPE),
    "special file 'fifo' (device, FIFO or other non-regular member)": lambda: _special(
        "fifo", tarfile.FIFOTYPE
    ),
    "special file 'device' (device, FIFO or other non-regular member)": lambda: _special(
        "device", tarfile.CHRTYPE
    ),
}


def _archive(path: Path, *members: "tuple[tarfile.TarInfo, bytes]") -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return path


@pytest.mark.parametrize("reason", sorted(UNSAFE))
def test_an_unsafe_member_is_refused_by_name_before_anything_is_written(tmp_path: Path, reason: str) -> None:
    archive = _archive(tmp_path / "model.tar.gz", _file("features.json", b"{}"), UNSAFE[reason]())
    target = tmp_path / "deep" / "target"
    target.mkdir(parents=True)

    with pytest.raises(UnsafeArchiveError) as refused:
        extract_archive(str(archive), str(target))

    assert str(refused.value) == f"unsafe member in model archive: {reason}"
    assert list(target.iterdir()) == []  # not even the harmless first member
    assert not (tmp_path / "deep" / "escaped.txt").exists()
    assert not (tmp_path / "escaped.txt").exists()


def test_plain_files_and_directories_are_extracted(tmp_path: Path) -> None:
    folder = tarfile.TarInfo("assets")
    folder.type = tarfile.DIRTYPE
    archive = _archive(
        tmp_path / "model.tar.gz", _file("features.json", b"{}"), (folder, b""), _file("assets/a.txt", b"a")
    )

    extract_archive(str(archive), str(tmp_path / "out"))

    assert (tmp_path / "out" / "features.json").read_bytes() == b"{}"
    assert (tmp_path / "out" / "assets" / "a.txt").read_bytes() == b"a"


def test_the_batch_transform_refuses_a_model_archive_with_a_link(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    _archive(model_dir / "model.tar.gz", _link("model.joblib", "/etc/passwd", tarfile.SYMTYPE))

    with pytest.raises(UnsafeArchiveError, match=re.escape("symbolic link 'model.joblib' -> '/etc/passwd'")):
        load_model_dir(str(model_dir))
