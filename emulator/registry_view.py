"""The saved registry behind `GET /models`, for the read-only `models` command.

`registry_api(root, state_dir)` loads `registry.json` into a moto table of its own and routes the
template's API to the handlers, as the runtime does, but takes no lock and writes nothing: it works
beside a runtime that holds the state directory (`api`, `run`), and reads what that runtime saved
last (an atomic rename, so the old file or the new one, never half of one).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import boto3

from emulator.api import ApiGateway
from emulator.lambdas import LocalLambda, apply_environment
from emulator.state import StateDir
from emulator.template import REGION, TableSpec, load_stack


def table_request(table: TableSpec) -> dict[str, Any]:
    """CreateTable's arguments for the template's registry table (on demand, as deployed)."""
    kwargs: dict[str, Any] = {
        "TableName": table.name,
        "KeySchema": table.key_schema,
        "AttributeDefinitions": table.attribute_definitions,
        "BillingMode": "PAY_PER_REQUEST",
    }
    if table.global_secondary_indexes:
        kwargs["GlobalSecondaryIndexes"] = [
            {k: v for k, v in gsi.items() if k != "ProvisionedThroughput"}
            for gsi in table.global_secondary_indexes
        ]
    return kwargs


@contextlib.contextmanager
def registry_api(
    root: Path,
    state_dir: Path,
    *,
    parameters: Mapping[str, str] | None = None,
    environment: Mapping[str, str] | None = None,
) -> Iterator[ApiGateway]:
    """The template's API over the registry saved in `state_dir` (which need not exist)."""
    from moto import mock_aws

    stack = load_stack(Path(root).resolve(), dict(parameters or {}))
    saved_environ = dict(os.environ)
    mock = mock_aws()
    mock.start()
    lambdas: LocalLambda | None = None
    try:
        os.environ["AWS_DEFAULT_REGION"] = REGION
        apply_environment(stack)
        os.environ.update(environment or {})
        boto3.client("dynamodb", region_name=REGION).create_table(**table_request(stack.table))
        StateDir(Path(state_dir)).load_table(stack.table.name)
        lambdas = LocalLambda(stack)
        yield ApiGateway(stack, lambdas)
    finally:
        if lambdas is not None:
            lambdas.close()
        mock.stop()
        os.environ.clear()
        os.environ.update(saved_environ)
