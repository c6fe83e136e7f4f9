"""Extracting the archives a job is handed (source bundle, model data, model report) safely.

They come from S3, so whoever can write the bucket chooses their members. tarfile's "data" filter
already refuses absolute and parent-relative names and links that leave the target, but it still
writes symbolic and hard links that stay inside, which a later member or the job can follow. None of
the project's archives holds a link, so any link, device or name leaving the target is refused before
anything is written, with an error naming the member.

The emulator keeps its own copy of this check rather than importing the project's pipelines package:
it runs any project (its tests use a fixture project with a pipelines package of its own).
"""

from __future__ import annotations

import tarfile
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import IO


class UnsafeArchiveError(ValueError):
    """A member an archive must not contain (a link, a device, or a name leaving the target)."""


def refusal(member: tarfile.TarInfo) -> str | None:
    """Why `member` may not be extracted, or None when it is a plain file or directory inside."""
    name = member.name
    if member.issym():
        return f"symbolic link {name!r} -> {member.linkname!r}"
    if member.islnk():
        return f"hard link {name!r} -> {member.linkname!r}"
    if not (member.isfile() or member.isdir()):
        return f"special file {name!r} (device, FIFO or other non-regular member)"
    if PurePosixPath(name).is_absolute() or PureWindowsPath(name).is_absolute() or name.startswith("\\"):
        return f"absolute path {name!r}"
    if ".." in name.replace("\\", "/").split("/"):
        return f"parent-relative path {name!r}"
    return None


def extract_archive(target: Path, *, path: Path | None = None, fileobj: IO[bytes] | None = None) -> None:
    """Extract the tar archive at `path` (or read from `fileobj`) into `target`, refusing unsafe members."""
    with tarfile.open(name=path, fileobj=fileobj) as tar:
        members = tar.getmembers()
        for member in members:
            reason = refusal(member)
            if reason is not None:
                raise UnsafeArchiveError(f"unsafe member in archive: {reason}")
        tar.extractall(target, members=members, filter="data")
