"""Session fixtures: template.yaml read, parsed and transformed once for all template tests."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from .template_checks import ASL_PATH, TEMPLATE_PATH, load_template, transform_template


@pytest.fixture(scope="session")
def template_text() -> str:
    return TEMPLATE_PATH.read_text()


@pytest.fixture(scope="session")
def sam_template(template_text: str) -> dict[str, Any]:
    return load_template(template_text)


@pytest.fixture(scope="session")
def cfn(sam_template: dict[str, Any]) -> dict[str, Any]:
    """The CloudFormation template the SAM transform produces (default parameters)."""
    return transform_template(sam_template)


@pytest.fixture(scope="session")
def resources(cfn: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return cfn["Resources"]


@pytest.fixture(scope="session")
def asl_text() -> str:
    if not ASL_PATH.exists():
        pytest.fail(f"{ASL_PATH.relative_to(ASL_PATH.parents[1])} is missing: the template's DefinitionUri")
    return ASL_PATH.read_text()


@pytest.fixture(scope="session")
def asl(asl_text: str) -> dict[str, Any]:
    # A number from the template (the jobs' Retry) is an unquoted placeholder: JSON once substituted.
    return json.loads(re.sub(r"(?<=: )\$\{\w+\}", "1", asl_text))
