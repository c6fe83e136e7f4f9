"""The local S3 copies objects as S3 does: multipart sources, the 5 GiB single-copy limit, multipart copy.

Real uploads over 8 MiB are multipart (composite checksums); the bundled 3 MB gzip never is. These
tests upload the way the AWS CLI and boto3 do and read every copy back through botocore's own
checksum validation (the check that failed with `FlexibleChecksumError` before the seam).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError
from moto import mock_aws

from emulator import s3 as local_s3

BUCKET = "copies"
MiB = 1024 * 1024


def payload(size: int) -> bytes:
    """Deterministic, incompressible-looking bytes (a CSV would do; only the size matters)."""
    block = hashlib.sha256(b"seed").digest() * (MiB // 32)
    return (block * (size // len(block) + 1))[:size]


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        local_s3.install()
        try:
            client = boto3.client("s3", region_name="us-east-1")
            client.create_bucket(Bucket=BUCKET)
            yield client
        finally:
            local_s3.uninstall()


def upload_multipart(s3: Any, key: str, body: bytes) -> dict[str, Any]:
    """As `aws s3 cp` does above 8 MiB: parts of 8 MiB, each with its CRC32."""
    import io

    s3.upload_fileobj(io.BytesIO(body), BUCKET, key, Config=TransferConfig(multipart_threshold=8 * MiB))
    return s3.head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")


def read_back(s3: Any, key: str) -> bytes:
    return s3.get_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")["Body"].read()


@pytest.mark.parametrize("size", [8 * MiB + 1, 18 * MiB + 123, 33 * MiB])
def test_copy_of_a_multipart_upload_reads_back_with_a_full_object_checksum(s3: Any, size: int) -> None:
    body = payload(size)
    head = upload_multipart(s3, "datasets/diabetic_data.csv", body)
    assert head["ChecksumType"] == "COMPOSITE" and "-" in head["ChecksumCRC32"]

    s3.copy_object(
        CopySource={"Bucket": BUCKET, "Key": "datasets/diabetic_data.csv"},
        Bucket=BUCKET,
        Key="runs/r1/input/diabetic_data.csv",
    )

    assert read_back(s3, "runs/r1/input/diabetic_data.csv") == body  # botocore validated the CRC32
    copied = s3.head_object(Bucket=BUCKET, Key="runs/r1/input/diabetic_data.csv", ChecksumMode="ENABLED")
    assert copied["ChecksumType"] == "FULL_OBJECT"
    assert "-" not in copied["ChecksumCRC32"]
    assert copied["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'  # one request: a plain MD5 ETag


def test_copy_of_a_single_part_upload_keeps_its_checksum(s3: Any) -> None:
    body = payload(3 * MiB)
    s3.put_object(Bucket=BUCKET, Key="datasets/small.csv", Body=body, ChecksumAlgorithm="SHA256")
    s3.copy_object(CopySource={"Bucket": BUCKET, "Key": "datasets/small.csv"}, Bucket=BUCKET, Key="copy.csv")
    assert read_back(s3, "copy.csv") == body
    source = s3.head_object(Bucket=BUCKET, Key="datasets/small.csv", ChecksumMode="ENABLED")
    copied = s3.head_object(Bucket=BUCKET, Key="copy.csv", ChecksumMode="ENABLED")
    assert copied["ChecksumSHA256"] == source["ChecksumSHA256"]


def test_copy_object_refuses_a_source_over_the_single_copy_limit(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_s3, "COPY_OBJECT_MAX_BYTES", 10 * MiB)  # stands for 5 GiB
    upload_multipart(s3, "datasets/big.csv", payload(10 * MiB + 1))
    with pytest.raises(ClientError) as raised:
        s3.copy_object(CopySource={"Bucket": BUCKET, "Key": "datasets/big.csv"}, Bucket=BUCKET, Key="copy")
    assert raised.value.response["Error"]["Code"] == "InvalidRequest"
    assert "larger than the maximum allowable size for a copy source" in str(raised.value)
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="copy")


def test_multipart_copy_copies_beyond_the_single_copy_limit(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_s3, "COPY_OBJECT_MAX_BYTES", 10 * MiB)
    body = payload(21 * MiB)
    upload_multipart(s3, "datasets/big.csv", body)
    s3.copy(
        {"Bucket": BUCKET, "Key": "datasets/big.csv"},
        BUCKET,
        "runs/r1/input/big.csv",
        Config=TransferConfig(multipart_threshold=10 * MiB, multipart_chunksize=8 * MiB, use_threads=False),
    )
    assert read_back(s3, "runs/r1/input/big.csv") == body


def test_upload_part_copy_refuses_a_range_over_the_limit(s3: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local_s3, "COPY_OBJECT_MAX_BYTES", 10 * MiB)
    upload_multipart(s3, "datasets/big.csv", payload(21 * MiB))
    upload = s3.create_multipart_upload(Bucket=BUCKET, Key="copy")
    with pytest.raises(ClientError) as raised:
        s3.upload_part_copy(
            Bucket=BUCKET,
            Key="copy",
            UploadId=upload["UploadId"],
            PartNumber=1,
            CopySource={"Bucket": BUCKET, "Key": "datasets/big.csv"},
            CopySourceRange=f"bytes=0-{11 * MiB - 1}",
        )
    assert raised.value.response["Error"]["Code"] == "InvalidRequest"


def test_the_seam_fits_this_moto() -> None:
    local_s3.check_contract()
