"""Extracting a model archive without letting it write outside the target directory.

A `model.tar.gz` comes from S3, so whoever can write the bucket chooses its members. A member named
`../x` or `/etc/x` would be written outside the target, and a symbolic or hard link would let a later
member (or the loader) reach any file on the host. The batch transform runs on Python 3.9 in the
SageMaker container, whose patch level may predate tarfile's extraction filters (3.9.17), so every
member is checked here explicitly; the "data" filter is applied on top where the interpreter has it.

Stdlib only and Python 3.9 compatible (no `X | Y` annotations at run time, no `match`).
"""

import os
import tarfile
from typing import Optional


class UnsafeArchiveError(ValueError):
    """A member the archive must not contain (a link, a device, or a name leaving the target)."""


def _refusal(member: tarfile.TarInfo) -> Optional[str]:
    """Why `member` may not be extracted, or None when it is a plain file or directory inside."""
    name = member.name
    if member.issym():
        return f"symbolic link {name!r} -> {member.linkname!r}"
    if member.islnk():
        return f"hard link {name!r} -> {member.linkname!r}"
    if not (member.isfile() or member.isdir()):
        return f"special file {name!r} (device, FIFO or other non-regular member)"
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or os.path.isabs(name) or (parts and parts[0].endswith(":")):
        return f"absolute path {name!r}"
    if ".." in parts:
        return f"parent-relative path {name!r}"
    return None


def checked_members(tar: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """Every member of `tar`, once each is known to be a plain file or directory inside the target.

    Raises UnsafeArchiveError naming the first member that is not (nothing has been written then).
    """
    members = tar.getmembers()
    for member in members:
        reason = _refusal(member)
        if reason is not None:
            raise UnsafeArchiveError(f"unsafe member in model archive: {reason}")
    return members


def extract_archive(archive: str, target: str) -> None:
    """Extract the tar archive at `archive` (any compression) into the directory `target`."""
    with tarfile.open(archive, "r:*") as tar:
        members = checked_members(tar)
        if hasattr(tarfile, "data_filter"):
            tar.extractall(target, members=members, filter="data")
        else:  # Python 3.9 before 3.9.17: the checks above are the whole protection
            tar.extractall(target, members=members)
