"""`sam build` of template.yaml on this machine, for the template's Lambda runtime.

Runs the SAM CLI from .venv-tools (`make test` creates it from requirements/tools.txt). The build
installs functions/requirements.txt for arm64 from PyPI, a package registry, as `sam build` always
does; nothing else is fetched. SAM's python builder needs `python3.X` of the runtime on PATH: the test
puts it there as `make build` does (scripts/lambda_python.py: a pyenv version when the shim cannot
serve it).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .template_checks import REPO, TEMPLATE_PATH

SAM = REPO / ".venv-tools" / "bin" / "sam"


def lambda_python():
    spec = importlib.util.spec_from_file_location("lambda_python", REPO / "scripts" / "lambda_python.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RUNTIME = lambda_python().template_runtime()


@pytest.fixture(scope="module")
def build_env() -> dict[str, str]:
    """This environment with a Python for the template's runtime first on PATH when it needs one."""
    directory = lambda_python().python_dir(RUNTIME)
    path = os.environ.get("PATH", "")
    return {
        **os.environ,
        "SAM_CLI_TELEMETRY": "0",
        "PATH": f"{directory}{os.pathsep}{path}" if directory else path,
    }


pytestmark = pytest.mark.sam


@pytest.fixture(scope="module")
def built(tmp_path_factory, build_env) -> Path:
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
        env=build_env,
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
    assert (code / "input.schema.json").is_file(), "run_input validates bodies against it"
    assert (code / "aws_lambda_powertools").is_dir()
    # Compiled dependencies (wrapt, under the X-Ray SDK) must be the Linux arm64 builds for the runtime's
    # Python the functions run on, not this machine's x86_64 ones (nor a cached build for another Python).
    abi = "cpython-" + RUNTIME.removeprefix("python").replace(".", "")
    shared = [so.name for so in code.rglob("*.so")]
    assert shared and all("aarch64" in name and abi in name for name in shared), shared
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


def test_every_handler_module_imports_under_the_runtimes_python(built, build_env):
    """The functions are tested on this Python (3.11); Lambda runs them on the runtime's: importing each
    handler there catches syntax or a standard-library module the newer Python no longer has."""
    code = built / _built_template(built)["Resources"]["ApiFunction"]["Properties"]["CodeUri"]
    source = (
        "import "
        + ", ".join(HANDLER_MODULES)
        + "; import run_input; run_input.allowed_instance_types('training')"
    )
    result = subprocess.run(
        [RUNTIME, "-I", "-c", f"import sys; sys.path.insert(0, {str(code)!r}); {source}"],
        env={**build_env, "POWERTOOLS_TRACE_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert sys.version_info[:2] <= tuple(int(n) for n in RUNTIME.removeprefix("python").split("."))
