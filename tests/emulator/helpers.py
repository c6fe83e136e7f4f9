"""What tests of the local AWS endpoint share: a client built the way a user's script builds one.

Imported as `tests.emulator.helpers` (by tests/emulator and tests/e2e), never through `conftest`.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config


def endpoint_client(url: str, service: str, *, retries: int | None = None) -> Any:
    """boto3's client for `service` at the endpoint `url`, with dummy credentials as a user's would be.

    `retries=1` gives one answer per call, for tests that check the error a single request gets;
    None keeps botocore's default retries, as a user's script has them.
    """
    config = Config(retries={"max_attempts": retries}) if retries is not None else None
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=config,
    )
