"""S3 URIs: parse and build `s3://bucket/key` strings in one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# What S3 answers for a key that is not there: NoSuchKey to GetObject; HeadObject has no body, so
# botocore reports its bare status (404) or NotFound.
_MISSING_OBJECT_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


@dataclass(frozen=True)
class S3Uri:
    bucket: str
    key: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    @property
    def name(self) -> str:
        """The last path segment (the file name), e.g. `diabetic_data.csv.gz`."""
        return self.key.rstrip("/").rsplit("/", 1)[-1]


def parse_s3_uri(uri: str) -> S3Uri:
    """Split `s3://bucket/key`; raise ValueError with the reason when it is not one."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise ValueError(f"{uri!r} is not an s3:// URI")
    bucket, _, key = uri[len("s3://") :].partition("/")
    if not bucket or not key:
        raise ValueError(f"{uri!r} must name a bucket and an object key")
    return S3Uri(bucket, key)


def is_missing_object(error: Any) -> bool:
    """Whether a botocore ClientError from GetObject/HeadObject says the object does not exist."""
    response = getattr(error, "response", None) or {}
    return is_missing_code((response.get("Error") or {}).get("Code"))


def is_missing_code(code: str | None) -> bool:
    """Whether an S3 error code means "no such object" (see `is_missing_object`)."""
    return code in _MISSING_OBJECT_CODES
