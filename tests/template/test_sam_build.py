"""`sam build` of template.yaml on this machine (Lambda runtime python3.11 = this Python).

Runs the SAM CLI from .venv-tools (`make test` creates it from requirements/tools.txt). The build
installs functions/requirements.txt for arm64 from PyPI, a package registry, as `sam build` always
does; nothing else is fetched.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

from .template_checks import REPO, TEMPLATE_PATH

SAM = REPO / ".venv-tools" / "bin" / "sam"

pytestmark = pytest.mark.sam


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    if not SAM.exists():
        message = f"{SAM} is missing: `make test` creates .venv-tools from requirements/tools.txt"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    build_dir = tmp_path_factory.mktemp("sam-build")
    result = subprocess.run(
        # --cached: the dependency layer is rebuilt only when functions/ or its requirements change
        # (.aws-sam/ is git-ignored), which keeps repeated test runs off the network.
        [
            str(SAM),
            "build",
            "--template-file",
            str(TEMPLATE_PATH),
            "--build-dir",
            str(build_dir),
            "--cached",
            "--cache-dir",
            str(REPO / ".aws-sam" / "test-build-cache"),
        ],
        cwd=REPO,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return build_dir


def _built_template(build_dir: Path) -> dict:
    class Loader(yaml.SafeLoader):
        pass

    # CloudFormation short-form tags become plain mappings; only the structure matters here.
    Loader.add_multi_constructor("!", lambda loader, suffix, node: {suffix: None})
    return yaml.load((build_dir / "template.yaml").read_text(), Loader=Loader)


FUNCTIONS = (
    "ApiFunction",
    "PrepareRunFunction",
    "ValidateDatasetFunction",
    "EvaluateModelFunction",
    "RegisterModelFunction",
    "RecordOutcomeFunction",
)
HANDLER_MODULES = (
    "api",
    "prepare_run",
    "validate_dataset",
    "evaluate_model",
    "register_model",
    "record_outcome",
)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_sam_build_packages_every_handler_with_powertools_built_for_arm64(built, function):
    code = built / _built_template(built)["Resources"][function]["Properties"]["CodeUri"]
    for module in HANDLER_MODULES:
        assert (code / f"{module}.py").is_file(), module
    assert (code / "instance_types.json").is_file(), "run_input reads it at validation time"
    assert (code / "aws_lambda_powertools").is_dir()
    # Compiled dependencies (wrapt, under the X-Ray SDK) must be the Linux arm64 builds the functions
    # run on, not this machine's x86_64 ones.
    assert all("aarch64" in so.name for so in code.rglob("*.so")), [so.name for so in code.rglob("*.so")]
    tags = [
        line.split(":", 1)[1].strip()
        for wheel in code.glob("*.dist-info/WHEEL")
        for line in wheel.read_text().splitlines()
        if line.startswith("Tag:")
    ]
    assert tags, "no installed wheel metadata found"
    assert not [tag for tag in tags if "x86_64" in tag or "win" in tag or "macosx" in tag], tags


@pytest.mark.parametrize("function", FUNCTIONS)
def test_the_built_package_holds_no_data_science_stack_and_stays_small(built, function):
    code = built / _built_template(built)["Resources"][function]["Properties"]["CodeUri"]
    for banned in ("pandas", "numpy", "sklearn", "scipy", "moto"):
        assert not (code / banned).exists(), banned
    # Lambda's limit is 250 MB unzipped; a tenth of that keeps cold starts short.
    size = sum(p.stat().st_size for p in code.rglob("*") if p.is_file())
    assert size < 100 * 1024 * 1024, f"{function} package is {size / 1e6:.1f} MB unzipped"


def test_the_state_machine_definition_is_carried_into_the_build(built):
    uri = _built_template(built)["Resources"]["PipelineStateMachine"]["Properties"]["DefinitionUri"]
    definition = (built / uri).resolve()
    assert definition == (REPO / "statemachine" / "readmission_pipeline.asl.json").resolve()
