"""Linters on the template and its state machine: cfn-lint, statelint, checkov, and the
DefinitionSubstitutions contract between template.yaml, the ASL and docs/architecture.md.
"""

from __future__ import annotations

import copy
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint
from cfnlint.data import AdditionalSpecs
from cfnlint.helpers import load_resource

from .template_checks import (
    ARCHITECTURE_PATH,
    REPO,
    TEMPLATE_PATH,
    asl_substitution_names,
    documented_substitution_names,
    resources_of_type,
    transform_template,
)

# Regions linted: where FindInMap must resolve and resource types must exist.
LINT_REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2"]
SECURITY_VENV = REPO / ".venv-security"
CHECKOV = SECURITY_VENV / "bin" / "checkov"
STATELINT = Path(sys.executable).parent / "statelint"


# ------------------------------------------------------------------ DefinitionSubstitutions


def test_template_substitutes_every_name_the_asl_uses_and_nothing_else(sam_template, asl_text):
    defined = set(sam_template["Resources"]["PipelineStateMachine"]["Properties"]["DefinitionSubstitutions"])
    used = asl_substitution_names(asl_text)
    assert used - defined == set(), "the ASL uses names the template does not define"
    assert defined - used == set(), "the template defines names the ASL does not use"


def test_every_substitution_is_in_the_documented_list(sam_template, asl_text):
    documented = documented_substitution_names(ARCHITECTURE_PATH.read_text())
    defined = set(sam_template["Resources"]["PipelineStateMachine"]["Properties"]["DefinitionSubstitutions"])
    assert defined - documented == set()
    assert asl_substitution_names(asl_text) - documented == set()


def _substituted(asl_text: str, substitutions: dict[str, Any]) -> str:
    """The definition as Step Functions receives it, with plausible values for every name."""
    values = {
        "Partition": "aws",
        "Region": "us-east-1",
        "AccountId": "123456789012",
        "MaxTrainingSeconds": "3600",
        "MaxTransformSeconds": "3600",
    }
    for name in substitutions:
        if name.endswith("Arn"):
            values.setdefault(name, f"arn:aws:lambda:us-east-1:123456789012:function:{name}")
        values.setdefault(name, f"resolved-{name.lower()}")
    for name, value in values.items():
        asl_text = asl_text.replace("${" + name + "}", value)
    return asl_text


def test_the_deployed_definition_is_valid_json_and_passes_statelint(sam_template, asl_text, tmp_path):
    substitutions = sam_template["Resources"]["PipelineStateMachine"]["Properties"]["DefinitionSubstitutions"]
    definition = _substituted(asl_text, substitutions)
    assert "${" not in definition
    json.loads(definition)
    path = tmp_path / "definition.asl.json"
    path.write_text(definition)
    result = subprocess.run([str(STATELINT), str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr


# ------------------------------------------------------------------ cfn-lint


def _lint_findings(text: str) -> list[str]:
    return [
        f"{m.rule.id} {m.message} (line {m.linenumber})"
        for m in lint(text, regions=LINT_REGIONS)
        if m.rule.id[0] in ("E", "W")
    ]


def test_cfn_lint_reports_no_error_or_warning(template_text):
    assert _lint_findings(template_text) == []


def test_cfn_lint_catches_a_seeded_error(template_text):
    seeded = template_text.replace("ObjectOwnership: BucketOwnerEnforced", "ObjectOwnership: BucketEnforced")
    assert any(f.startswith("E") for f in _lint_findings(seeded))


# ------------------------------------------------------------------ checkov


def _run_checkov(*paths: Path) -> dict[str, Any]:
    if not CHECKOV.exists():
        message = f"{CHECKOV} is missing: `make test` creates .venv-security from requirements/security.txt"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    # Offline: no platform mapping, no policy download (checkov would otherwise try the network).
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    files = [arg for path in paths for arg in ("--file", str(path))]
    result = subprocess.run(
        [
            str(CHECKOV),
            *files,
            "--framework",
            "cloudformation",
            "--skip-download",
            "--output",
            "json",
            "--compact",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    # checkov exits 1 when a check fails; anything else but 0 is a crash.
    assert result.returncode in (0, 1), result.stderr[-2000:]
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def checkov_reports(sam_template, tmp_path_factory) -> dict[str, list[dict[str, Any]]]:
    """One checkov run (its start-up is most of its cost) over template.yaml and the SAM-transformed
    template; the checks of each, by result ("passed", "failed", "skipped") and file."""
    transformed = tmp_path_factory.mktemp("checkov") / "transformed.json"
    transformed.write_text(json.dumps(transform_template(sam_template)))
    report = _run_checkov(TEMPLATE_PATH, transformed)
    assert report["summary"]["parsing_errors"] == 0
    by_result: dict[str, list[dict[str, Any]]] = {}
    for result in ("passed", "failed", "skipped"):
        for check in report["results"].get(f"{result}_checks", []):
            source = "template" if check["file_path"].endswith("template.yaml") else "transformed"
            by_result.setdefault(f"{source}:{result}", []).append(check)
    return by_result


def _ids(checks: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(c["check_id"], c["resource"]) for c in checks]


def test_checkov_finds_no_failed_check_in_the_template(checkov_reports):
    assert len(checkov_reports.get("template:passed", [])) > 30, "checkov looked at too little"
    assert _ids(checkov_reports.get("template:failed", [])) == []


def test_every_checkov_skip_gives_its_reason(checkov_reports):
    skipped = checkov_reports.get("template:skipped", [])
    assert skipped, "the skips in the template's Metadata were not read"
    for check in skipped:
        reason = check["check_result"].get("suppress_comment") or ""
        assert len(reason.strip()) >= 20, (check["check_id"], check["resource"])


def test_checkov_on_the_transformed_template_fails_only_checks_skipped_on_the_sam_resource(checkov_reports):
    """SAM-generated resources (API stage, function roles) are checked too; the Metadata skips of the SAM
    resource that generated one (logical id prefix) cover it, nothing else does."""
    assert len(checkov_reports.get("transformed:passed", [])) > 60, "checkov looked at too little"
    skipped = {
        (check_id, resource.split(".", 1)[1])
        for check_id, resource in _ids(checkov_reports["template:skipped"])
    }
    unexplained = [
        (check_id, resource)
        for check_id, resource in _ids(checkov_reports.get("transformed:failed", []))
        if not any(
            check_id == skip_id and resource.split(".", 1)[1].startswith(source)
            for skip_id, source in skipped
        )
    ]
    assert unexplained == []


# ------------------------------------------------------------------ Lambda runtime lifecycle

# A runtime AWS deprecates within this long of today must be moved off now: after deprecation no
# security patches, then creating and updating functions on it is blocked (cfn-lint's E2531/W2531).
RUNTIME_NOTICE = datetime.timedelta(days=365)


def runtime_lifecycle_findings(cfn: dict[str, Any], today: datetime.date) -> list[str]:
    """Functions whose runtime the pinned cfn-lint's lifecycle data deprecates within RUNTIME_NOTICE
    of `today`, or does not know."""
    lifecycle = load_resource(AdditionalSpecs, "LmbdRuntimeLifecycle.json")
    findings = []
    for name, function in sorted(resources_of_type(cfn, "AWS::Lambda::Function").items()):
        runtime = function["Properties"].get("Runtime")
        if runtime not in lifecycle:
            findings.append(f"{name}: runtime {runtime} is not in cfn-lint's runtime lifecycle data")
            continue
        deprecated = datetime.date.fromisoformat(lifecycle[runtime]["deprecated"])
        if deprecated - today < RUNTIME_NOTICE:
            findings.append(
                f"{name}: {runtime} is deprecated on {deprecated}, within a year of {today} "
                f"(successor: {lifecycle[runtime]['successor']})"
            )
    return findings


def test_no_function_runs_on_a_runtime_deprecated_within_a_year(cfn):
    assert resources_of_type(cfn, "AWS::Lambda::Function")
    assert runtime_lifecycle_findings(cfn, datetime.date.today()) == []


def test_a_runtime_deprecated_within_a_year_is_reported(sam_template):
    seeded = copy.deepcopy(sam_template)
    seeded["Globals"]["Function"]["Runtime"] = "python3.11"  # deprecated 2027-06-30 in cfn-lint's data
    findings = runtime_lifecycle_findings(transform_template(seeded), datetime.date(2026, 12, 1))

    assert len(findings) == 6
    assert findings[0].startswith("ApiFunction: python3.11 is deprecated on 2027-06-30, within a year")
    assert runtime_lifecycle_findings(transform_template(seeded), datetime.date(2026, 6, 1)) == []
