"""The deploy flow: samconfig.toml environments, scripts/deploy.sh's order, scripts/publish_code.py."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from scripts.publish_code import (
    REQUIRED_FILES,
    PublishError,
    bundle_files,
    main,
    publish,
    samconfig_target,
    stack_bucket,
)

from .template_checks import REPO

BUCKET = "readmission-mlops-dev-artifactbucket-abc"


@pytest.fixture
def aws(monkeypatch):
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        yield s3


@pytest.fixture
def bundle(tmp_path) -> Path:
    root = tmp_path / "code"
    for name in REQUIRED_FILES:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"content of {name}".encode())
    (root / "src" / "pipelines").mkdir()
    (root / "src" / "pipelines" / "schema.py").write_text("COLUMNS = []\n")
    return root


def _keys(s3) -> set[str]:
    return {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="code/").get("Contents", [])}


# ------------------------------------------------------------------ samconfig.toml


def test_samconfig_has_default_dev_and_prod_with_iam_capability_and_resolve_s3():
    config = tomllib.loads((REPO / "samconfig.toml").read_text())
    stacks = set()
    for env in ("default", "dev", "prod"):
        deploy = config[env]["deploy"]["parameters"]
        assert deploy["capabilities"] == "CAPABILITY_IAM"
        assert deploy["resolve_s3"] is True
        assert f"Stage={'prod' if env == 'prod' else 'dev'}" in deploy["parameter_overrides"]
        stacks.add(samconfig_target(env)[0])
    assert len(stacks) == 3, "each environment deploys its own stack"
    assert config["prod"]["deploy"]["parameters"]["confirm_changeset"] is True
    assert config["dev"]["deploy"]["parameters"]["confirm_changeset"] is False


def test_each_environment_has_its_own_job_name_prefix_within_the_templates_pattern(sam_template):
    pattern = sam_template["Parameters"]["JobNamePrefix"]["AllowedPattern"]
    config = tomllib.loads((REPO / "samconfig.toml").read_text())
    prefixes = []
    for env in ("default", "dev", "prod"):
        overrides = dict(
            item.split("=", 1) for item in config[env]["deploy"]["parameters"]["parameter_overrides"].split()
        )
        assert set(overrides) <= set(sam_template["Parameters"]), f"[{env}] overrides an unknown parameter"
        assert re.fullmatch(pattern, overrides["JobNamePrefix"]), env
        prefixes.append(overrides["JobNamePrefix"])
    assert len(set(prefixes)) == 3


def test_unknown_samconfig_environment_is_named_in_the_error():
    with pytest.raises(PublishError, match="no environment 'staging'"):
        samconfig_target("staging")


# ------------------------------------------------------------------ publish_code


def test_publish_uploads_the_bundle_under_code(aws, bundle):
    result = publish(bundle, BUCKET, aws)
    expected = {f"code/{name}" for name in REQUIRED_FILES} | {"code/src/pipelines/schema.py"}
    assert _keys(aws) == expected
    assert set(result.uploaded) == expected
    body = aws.get_object(Bucket=BUCKET, Key="code/dataset_schema.json")["Body"].read()
    assert body == b"content of dataset_schema.json"


def test_publish_uploads_the_schema_last(aws, bundle):
    result = publish(bundle, BUCKET, aws)
    assert result.uploaded[-1] == "code/dataset_schema.json"
    assert result.uploaded.index("code/sourcedir.tar.gz") > result.uploaded.index("code/src/drift.py")


def test_publish_removes_files_an_older_bundle_left_but_nothing_outside_code(aws, bundle):
    aws.put_object(Bucket=BUCKET, Key="code/src/pipelines/removed_module.py", Body=b"old")
    aws.put_object(Bucket=BUCKET, Key="datasets/diabetic_data.csv", Body=b"a,b\n")
    result = publish(bundle, BUCKET, aws)
    assert result.deleted == ["code/src/pipelines/removed_module.py"]
    assert "code/src/pipelines/removed_module.py" not in _keys(aws)
    aws.head_object(Bucket=BUCKET, Key="datasets/diabetic_data.csv")


def test_an_incomplete_bundle_uploads_and_deletes_nothing(aws, bundle):
    aws.put_object(Bucket=BUCKET, Key="code/sourcedir.tar.gz", Body=b"working bundle")
    (bundle / "dataset_schema.json").unlink()
    with pytest.raises(PublishError, match=re.escape("missing dataset_schema.json")):
        publish(bundle, BUCKET, aws)
    assert _keys(aws) == {"code/sourcedir.tar.gz"}
    assert aws.get_object(Bucket=BUCKET, Key="code/sourcedir.tar.gz")["Body"].read() == b"working bundle"


def test_a_missing_bundle_directory_says_how_to_build_it(tmp_path):
    with pytest.raises(PublishError, match=re.escape("pipelines.bundle --out")):
        bundle_files(tmp_path / "nowhere")


def test_the_real_bundle_has_every_file_the_contract_names(tmp_path):
    out = tmp_path / "code"
    subprocess.run(
        [sys.executable, "-m", "pipelines.bundle", "--out", str(out)], cwd=REPO, check=True, timeout=120
    )
    files = bundle_files(out)
    assert json.loads(files["dataset_schema.json"].read_text())["target_column"] == "readmitted"


def test_bucket_comes_from_the_stacks_bucketname_output(aws):
    cloudformation = boto3.client("cloudformation", region_name="us-east-1")
    body = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {"BucketName": {"Value": BUCKET}},
    }
    cloudformation.create_stack(StackName="readmission-mlops-dev", TemplateBody=json.dumps(body))
    assert stack_bucket(cloudformation, "readmission-mlops-dev") == BUCKET
    with pytest.raises(PublishError, match="stack absent-stack not found"):
        stack_bucket(cloudformation, "absent-stack")


def test_cli_publishes_to_a_named_bucket_and_reports_errors_with_exit_status_2(aws, bundle, capsys):
    assert main(["--bucket", BUCKET, "--bundle-dir", str(bundle)]) == 0
    assert "published 6 files" in capsys.readouterr().out
    assert main(["--bucket", BUCKET, "--bundle-dir", str(bundle / "absent")]) == 2
    assert "does not exist" in capsys.readouterr().err


# ------------------------------------------------------------------ scripts/deploy.sh


def _fake(path: Path, log: Path, fail_on: str = "") -> Path:
    path.write_text(
        "#!/usr/bin/env bash\n"
        f'echo "$(basename "$0") $*" >> {log}\n'
        f'if [[ -n "{fail_on}" && "$*" == *"{fail_on}"* ]]; then exit 3; fi\n'
    )
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def _run_deploy(
    tmp_path: Path, *args: str, fail_on: str = ""
) -> tuple[subprocess.CompletedProcess, list[str]]:
    log = tmp_path / "calls.log"
    log.touch()
    env = {
        **os.environ,
        "SAM": str(_fake(tmp_path / "sam", log, fail_on)),
        "PY": str(_fake(tmp_path / "python", log, fail_on)),
    }
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "deploy.sh"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result, log.read_text().splitlines()


def test_deploy_builds_deploys_then_bundles_and_publishes_for_the_chosen_environment(tmp_path):
    result, calls = _run_deploy(tmp_path, "prod", "--no-execute-changeset")
    assert result.returncode == 0, result.stderr
    assert calls == [
        "python scripts/lambda_python.py",  # the PATH prefix giving sam build the runtime's Python
        "sam build --config-env prod",
        "sam deploy --config-env prod --no-execute-changeset",
        "python -m pipelines.bundle --out build/code",
        "python scripts/publish_code.py --config-env prod --bundle-dir build/code",
        "python scripts/publish_console.py --config-env prod",
    ]


def test_a_failed_stack_deploy_publishes_no_code(tmp_path):
    result, calls = _run_deploy(tmp_path, "dev", fail_on="deploy")
    assert result.returncode != 0
    assert calls == [
        "python scripts/lambda_python.py",
        "sam build --config-env dev",
        "sam deploy --config-env dev",
    ]
