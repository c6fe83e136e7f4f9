"""Every boto3 client the Lambda handlers build honours AWS_ENDPOINT_URL, so `sam local invoke
--env-vars events/sam_local_env.json` (or any shell with the variable) points them at the local
endpoint. Docker is not on these machines: the contract is tested on the clients themselves."""

from __future__ import annotations

import ast
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
EVENTS = Path(__file__).resolve().parents[2] / "events"
ENDPOINT = "http://127.0.0.1:4566"


def _load(name: str) -> ModuleType:
    """A functions/ module under a name of its own (the functions' tests import them by their names)."""
    spec = importlib.util.spec_from_file_location(f"_endpoint_check_{name}", FUNCTIONS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _client_sites(path: Path) -> list[str]:
    """`boto3.client(...)`, `boto3.resource(...)`, `boto3.Session(...)` calls: where each is made."""
    sites = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef):
            for call in ast.walk(node):
                if (
                    isinstance(call, ast.Call)
                    and isinstance(call.func, ast.Attribute)
                    and isinstance(call.func.value, ast.Name)
                    and call.func.value.id == "boto3"
                    and call.func.attr in ("client", "resource", "Session")
                ):
                    sites.append(f"{path.stem}.{node.name}")
    return sites


def test_the_handlers_build_clients_in_two_places_only() -> None:
    sites = sorted(site for path in sorted(FUNCTIONS.glob("*.py")) for site in _client_sites(path))
    assert sites == ["aws_clients.client", "console_api.presigning_client"]


@pytest.fixture
def endpoint_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", ENDPOINT)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", raising=False)
    monkeypatch.delenv("ARTIFACT_LINK_ENDPOINT", raising=False)


@pytest.mark.parametrize("service", ["s3", "dynamodb", "sns", "stepfunctions", "sagemaker", "cloudwatch"])
def test_the_shared_client_of_every_service_goes_to_aws_endpoint_url(
    endpoint_env: None, service: str
) -> None:
    aws_clients = _load("aws_clients")
    assert aws_clients.client(service).meta.endpoint_url == ENDPOINT


def test_the_link_signing_client_goes_to_aws_endpoint_url_when_no_link_endpoint_is_set(
    endpoint_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = set(sys.modules)
    monkeypatch.syspath_prepend(str(FUNCTIONS))  # console_api imports its sibling modules
    try:
        assert _load("console_api").presigning_client().meta.endpoint_url == ENDPOINT
    finally:  # the siblings leave with it: the local runtime imports the handlers its own way
        for name in set(sys.modules) - before:
            if str(getattr(sys.modules[name], "__file__", "") or "").startswith(str(FUNCTIONS)):
                del sys.modules[name]


def test_without_the_variable_the_clients_go_to_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    assert _load("aws_clients").client("s3").meta.endpoint_url.endswith(".amazonaws.com")


def test_the_sam_env_vars_file_points_every_function_at_the_endpoint() -> None:
    """`sam local invoke --env-vars`: `Parameters` applies to every function of the template."""
    settings = json.loads((EVENTS / "sam_local_env.json").read_text())
    assert settings["Parameters"]["AWS_ENDPOINT_URL"].endswith(":4566")
