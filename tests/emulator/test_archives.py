"""The archives a local job is handed (source bundle, model data, model report) are extracted only when
every member is a plain file or directory inside the target; anything else is refused by name, before
anything is written (emulator/archives.py, used by emulator/sagemaker.py and emulator/summary.py)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from emulator.archives import UnsafeArchiveError, extract_archive


def member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = 1 if kind == tarfile.REGTYPE else 0
    return info


UNSAFE = [
    (member("../escaped.txt"), "parent-relative path '../escaped.txt'"),
    (member("code/../../escaped.txt"), "parent-relative path 'code/../../escaped.txt'"),
    (member("/tmp/escaped.txt"), "absolute path '/tmp/escaped.txt'"),
    (member("train.py", tarfile.SYMTYPE, "/etc/passwd"), "symbolic link 'train.py' -> '/etc/passwd'"),
    (member("alias.py", tarfile.SYMTYPE, "ok.py"), "symbolic link 'alias.py' -> 'ok.py'"),
    (member("train.py", tarfile.LNKTYPE, "/etc/passwd"), "hard link 'train.py' -> '/etc/passwd'"),
    (member("copy.py", tarfile.LNKTYPE, "ok.py"), "hard link 'copy.py' -> 'ok.py'"),
    (member("fifo", tarfile.FIFOTYPE), "special file 'fifo' (device, FIFO or other non-regular member)"),
    (member("disk", tarfile.BLKTYPE), "special file 'disk' (device, FIFO or other non-regular member)"),
]


def archive_of(*members: tarfile.TarInfo) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info in members:
            tar.addfile(info, io.BytesIO(b"x") if info.isfile() else None)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("unsafe", "reason"), UNSAFE, ids=[reason.split(" '")[0] + "-" + m.name for m, reason in UNSAFE]
)
@pytest.mark.parametrize("source", ["path", "fileobj"])
def test_an_unsafe_member_is_refused_by_name_before_anything_is_written(
    tmp_path: Path, unsafe: tarfile.TarInfo, reason: str, source: str
) -> None:
    data = archive_of(member("ok.py"), unsafe)
    target = tmp_path / "deep" / "target"
    target.mkdir(parents=True)
    archive = tmp_path / "archive.tar.gz"
    archive.write_bytes(data)

    with pytest.raises(UnsafeArchiveError) as refused:
        if source == "path":
            extract_archive(target, path=archive)
        else:
            extract_archive(target, fileobj=io.BytesIO(data))

    assert str(refused.value) == f"unsafe member in archive: {reason}"
    assert list(target.iterdir()) == []
    assert not (tmp_path / "deep" / "escaped.txt").exists()


def test_plain_files_and_directories_are_extracted(tmp_path: Path) -> None:
    data = archive_of(member("pkg", tarfile.DIRTYPE), member("pkg/a.py"), member("train.py"))

    extract_archive(tmp_path, fileobj=io.BytesIO(data))

    assert (tmp_path / "pkg" / "a.py").read_bytes() == b"x"
    assert (tmp_path / "train.py").read_bytes() == b"x"
