"""The seam into moto's S3 backend: copies behave as S3's do, up to and beyond the single-copy limit.

Two S3 behaviours a real upload depends on, and moto 5.2 gets wrong:

* **A copy is a new object with a checksum of its own.** A file over 8 MiB is uploaded in parts
  (the AWS CLI and boto3's `upload_file` do so); its checksum is COMPOSITE (a CRC32 of the parts'
  CRC32s, reported as `<value>-<parts>`), which SDKs do not try to verify. `CopyObject` writes the
  copy in one request: S3 keeps the algorithm and computes a FULL_OBJECT checksum of the copy's
  bytes. moto copies the composite value onto the copy as if it were a full-object one, so every
  GetObject of the copy fails botocore's check (`FlexibleChecksumError: Expected checksum ...`;
  compare moto issue 8762). Here the copy gets the checksum S3 gives it.
* **HeadObject reports the checksum GetObject reports**: with `ChecksumMode=ENABLED`, a composite
  value as `<value>-<parts>` and its `ChecksumType`. moto's HeadObject drops both (a caller comparing
  checksums between the two calls would see different values).
* **One `CopyObject` copies at most 5 GiB** (`InvalidRequest: The specified copy source is larger
  than the maximum allowable size for a copy source`); above that a copy is a multipart upload of
  `UploadPartCopy` ranges, each at most 5 GiB. moto copies any size. Here both limits hold
  (`COPY_OBJECT_MAX_BYTES`, a module constant so tests can lower it instead of writing 5 GiB).

`install()` patches `S3Backend.copy_object`, `S3Backend.upload_part_copy` and
`S3Response.head_object` in place; `check_contract()` fails loudly when a moto upgrade moves them.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from typing import Any

from moto.s3.exceptions import S3ClientError
from moto.s3.models import S3Backend
from moto.s3.responses import S3Response
from moto.s3.utils import compute_checksum

COPY_OBJECT_MAX_BYTES = 5 * 1024**3  # CopyObject's limit, and UploadPartCopy's per part

_ORIGINAL_COPY_OBJECT = S3Backend.copy_object
_ORIGINAL_UPLOAD_PART_COPY = S3Backend.upload_part_copy
_ORIGINAL_HEAD_OBJECT = S3Response.head_object
_lock = threading.Lock()
_installed = 0  # runtimes (or tests) that asked for the patch; it stays until the last one leaves


class SeamError(RuntimeError):
    """moto's S3 backend is not what this seam was written against."""


def _copy_source_too_large(size: int) -> S3ClientError:
    return S3ClientError(
        "InvalidRequest",
        "The specified copy source is larger than the maximum allowable size for a copy source: "
        f"{COPY_OBJECT_MAX_BYTES}",
    )


def _copy_object(
    self: Any, src_key: Any, dest_bucket_name: str, dest_key_name: str, *args: Any, **kwargs: Any
) -> Any:
    if src_key.size > COPY_OBJECT_MAX_BYTES:
        raise _copy_source_too_large(src_key.size)
    algorithm = src_key.checksum_algorithm
    result = _ORIGINAL_COPY_OBJECT(self, src_key, dest_bucket_name, dest_key_name, *args, **kwargs)
    if algorithm:
        # the copy's own checksum: same algorithm, over the copy's bytes, one part
        copied = self.get_object(dest_bucket_name, dest_key_name)
        copied.checksum_algorithm = algorithm
        copied.checksum_value = compute_checksum(copied.value, algorithm=algorithm).decode()
        copied.checksum_type = "FULL_OBJECT"
        copied.checksum_parts = None
    return result


def _upload_part_copy(
    self: Any,
    dest_bucket_name: str,
    multipart_id: str,
    part_id: int,
    src_bucket_name: str,
    src_key_name: str,
    src_version_id: str | None,
    start_byte: int | None,
    end_byte: int | None,
) -> Any:
    if start_byte is None:
        size = self.get_object(src_bucket_name, src_key_name, version_id=src_version_id).size
    else:
        size = int(end_byte or 0) - int(start_byte) + 1
    if size > COPY_OBJECT_MAX_BYTES:
        raise _copy_source_too_large(size)
    return _ORIGINAL_UPLOAD_PART_COPY(
        self,
        dest_bucket_name,
        multipart_id,
        part_id,
        src_bucket_name,
        src_key_name,
        src_version_id,
        start_byte,
        end_byte,
    )


def _head_object(
    self: Any, bucket_name: str, query: dict[str, Any], key_name: str, headers: dict[str, Any]
) -> Any:
    status, response_headers, body = _ORIGINAL_HEAD_OBJECT(self, bucket_name, query, key_name, headers)
    if status == 200 and headers.get("x-amz-checksum-mode") == "ENABLED":
        version_id = query.get("versionId", [None])[0]
        key = self.backend.head_object(bucket_name, key_name, version_id=version_id)
        if key is not None and key.checksum_algorithm and key.checksum_type:
            value = key.checksum_value
            if key.checksum_type == "COMPOSITE":
                value = f"{value}-{key.checksum_parts}"
            response_headers[f"x-amz-checksum-{key.checksum_algorithm.lower()}"] = value
            response_headers["x-amz-checksum-type"] = key.checksum_type
    return status, response_headers, body


def _params(func: Callable[..., Any]) -> list[str]:
    return [p for p in inspect.signature(func).parameters if p != "self"]


def check_contract() -> None:
    """Raise SeamError naming what changed if moto's S3 backend no longer fits the seam."""
    problems = []
    if _params(_ORIGINAL_COPY_OBJECT)[:3] != ["src_key", "dest_bucket_name", "dest_key_name"]:
        problems.append(f"S3Backend.copy_object{_params(_ORIGINAL_COPY_OBJECT)} changed")
    expected = [
        "dest_bucket_name", "multipart_id", "part_id", "src_bucket_name", "src_key_name",
        "src_version_id", "start_byte", "end_byte",
    ]  # fmt: skip
    if _params(_ORIGINAL_UPLOAD_PART_COPY) != expected:
        problems.append(f"S3Backend.upload_part_copy{_params(_ORIGINAL_UPLOAD_PART_COPY)} changed")
    if _params(_ORIGINAL_HEAD_OBJECT) != ["bucket_name", "query", "key_name", "headers"]:
        problems.append(f"S3Response.head_object{_params(_ORIGINAL_HEAD_OBJECT)} changed")
    key_init = _params(__import__("moto.s3.models", fromlist=["FakeKey"]).FakeKey.__init__)
    if not {"checksum_value", "checksum_type", "checksum_parts"} <= set(key_init):
        problems.append("FakeKey no longer keeps checksum_value/checksum_type/checksum_parts")
    if problems:
        raise SeamError("moto's S3 backend changed under the local runtime: " + "; ".join(problems))


def install() -> None:
    """Patch moto's S3 backend (process-wide; counted, so nested runtimes and tests compose)."""
    global _installed
    check_contract()
    with _lock:
        _installed += 1
        S3Backend.copy_object = _copy_object  # type: ignore[method-assign]
        S3Backend.upload_part_copy = _upload_part_copy  # type: ignore[method-assign]
        S3Response.head_object = _head_object  # type: ignore[method-assign]


def uninstall() -> None:
    global _installed
    with _lock:
        _installed = max(0, _installed - 1)
        if _installed == 0:
            S3Backend.copy_object = _ORIGINAL_COPY_OBJECT  # type: ignore[method-assign]
            S3Backend.upload_part_copy = _ORIGINAL_UPLOAD_PART_COPY  # type: ignore[method-assign]
            S3Response.head_object = _ORIGINAL_HEAD_OBJECT  # type: ignore[method-assign]
