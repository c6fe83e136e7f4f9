"""boto3 clients, created on first use and then reused for the container's lifetime.

Importing boto3 costs a few hundred milliseconds; deferring it keeps every handler module cheap to
import (the tests and the local runtime import them all) and creates only the clients a handler uses.
"""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def client(service: str) -> Any:
    """The shared boto3 client for `service` (region and endpoint from the environment).

    No endpoint is passed: boto3 takes AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_<SERVICE>) from the
    environment, so `sam local invoke --env-vars events/sam_local_env.json` points every handler at
    the local endpoint (`python -m emulator api`) and on AWS, where it is unset, nothing changes."""
    import boto3

    return boto3.client(service)


def reset() -> None:
    """Forget the cached clients (tests call this when they switch moto contexts)."""
    client.cache_clear()
