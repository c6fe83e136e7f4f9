"""A bounded, deterministic slice of the mutation run (docs/mutation.md), for every `make test`.

Each case applies one named mutant (one exact source edit) to a copy of functions/ and pipelines/ and
runs the tests that must kill it; the suite must fail. The first three are the spot checks of issue 14
that once left the suite green; the next seven are mutants of the same deciding code chosen because
the tests before `make mutation` let them live; four are survivors of the handler modules' run (a
promotion that forgets the champion it was compared with, a subject cut at SNS's limit, a snapshot
of the "null" version, a succeeded key that starts again); and one each guards the registry, the
dataset check, the cost page and the report publication (a failed run's key never claimed again, a
line of exactly the payload limit refused, one unpriced run counted at most, a symbolic link
published). Each is killed by a test that needs no moto account. A control run of the unmutated copy
must pass, so a kill is never a broken copy. The whole mutmut run (`make mutation`) is too long for
CI; this is its pin.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GATE_TESTS = ("tests/functions/test_gate_boundaries.py",)
INPUT_TESTS = ("tests/functions/test_run_input_boundaries.py",)
PIPELINE_TESTS = ("tests/pipelines/test_evaluation_decisions.py",)
# The handler modules' (docs/mutation.md): tests against recording fakes, no moto account.
PROMOTION_TESTS = ("tests/functions/test_promotion_mutants.py",)
OUTCOME_TESTS = ("tests/functions/test_record_outcome_mutants.py",)
PREPARE_TESTS = ("tests/functions/test_prepare_run_mutants.py",)
API_TESTS = ("tests/functions/test_api_mutants.py",)
# The third and fourth passes' modules.
REGISTRY_TESTS = ("tests/functions/test_registry_mutants.py",)
VALIDATE_TESTS = ("tests/functions/test_validate_dataset_mutants.py",)
CONSOLE_TESTS = ("tests/functions/test_console_api_mutants.py",)
REPORT_TESTS = ("tests/functions/test_report_publication_mutants.py",)
HANDLER_TESTS = (
    PROMOTION_TESTS
    + OUTCOME_TESTS
    + PREPARE_TESTS
    + API_TESTS
    + REGISTRY_TESTS
    + VALIDATE_TESTS
    + CONSOLE_TESTS
    + REPORT_TESTS
)


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    original: str
    mutated: str
    tests: tuple[str, ...]


MUTANTS = [
    Mutant(
        "gate-floor-made-strict",
        "functions/evaluate_model.py",
        "if roc >= min_roc_auc:",
        "if roc > min_roc_auc:",
        GATE_TESTS,
    ),
    Mutant(
        "digest-ignores-hyperparameters",
        "functions/run_input.py",
        '        "hyperparameters": {k: str(v) for k, v in sorted(request.hyperparameters.items())},\n',
        "",
        INPUT_TESTS,
    ),
    Mutant(
        "score-location-ignores-the-bucket",
        "functions/run_input.py",
        "if uri.bucket != settings.bucket or not uri.key.startswith(allowed):",
        "if not uri.key.startswith(allowed):",
        INPUT_TESTS,
    ),
    Mutant(
        "delong-lower-bound-made-lenient",
        "functions/evaluate_model.py",
        "if low > -max_auc_drop:",
        "if low >= -max_auc_drop:",
        GATE_TESTS,
    ),
    Mutant(
        "unpaired-tie-replaces-the-champion",
        "functions/evaluate_model.py",
        "if difference > -max_auc_drop:",
        "if difference >= -max_auc_drop:",
        GATE_TESTS,
    ),
    Mutant(
        "dataset-location-ignores-the-bucket",
        "functions/run_input.py",
        '    if uri.bucket != settings.bucket:\n        raise InvalidInput(f"dataset',
        '    if False:\n        raise InvalidInput(f"dataset',
        INPUT_TESTS,
    ),
    Mutant(
        "etag-quotes-change-the-key",
        "functions/run_input.py",
        "content_id.strip(chr(34))",
        "content_id",
        INPUT_TESTS,
    ),
    Mutant(
        "threshold-made-strict",
        "pipelines/evaluation.py",
        "predicted = p >= threshold",
        "predicted = p > threshold",
        PIPELINE_TESTS,
    ),
    Mutant(
        "split-may-hold-out-nobody",
        "pipelines/evaluation.py",
        "max(1, round(validation_fraction * len(unique)))",
        "max(0, round(validation_fraction * len(unique)))",
        PIPELINE_TESTS,
    ),
    Mutant(
        "minimum-rows-off-by-one",
        "pipelines/data.py",
        "if len(frame) < MIN_TRAINING_ROWS:",
        "if len(frame) <= MIN_TRAINING_ROWS:",
        PIPELINE_TESTS,
    ),
    Mutant(
        "promotion-forgets-the-compared-champion",
        "functions/promotion.py",
        'expected = evaluation.get("comparedChampionVersion")',
        "expected = None",
        PROMOTION_TESTS,
    ),
    Mutant(
        "a-subject-at-the-sns-limit-is-cut",
        "functions/record_outcome.py",
        "return text if len(text) <= SUBJECT_MAX else",
        "return text if len(text) < SUBJECT_MAX else",
        OUTCOME_TESTS,
    ),
    Mutant(
        "snapshot-copies-the-null-version",
        "functions/prepare_run.py",
        'if dataset.version_id and dataset.version_id != "null":',
        "if dataset.version_id:",
        PREPARE_TESTS,
    ),
    Mutant(
        "a-succeeded-key-starts-again",
        "functions/api.py",
        'if existing in ("RUNNING", "SUCCEEDED"):',
        'if existing in ("RUNNING",):',
        API_TESTS,
    ),
    Mutant(
        "a-failed-runs-key-is-never-claimed-again",
        "functions/registry.py",
        '"attribute_not_exists(pk) OR run_status = :failed "',
        '"attribute_not_exists(pk) "',
        REGISTRY_TESTS,
    ),
    Mutant(
        "a-line-of-exactly-the-payload-limit-is-refused",
        "functions/validate_dataset.py",
        "if len(line) > limit:",
        "if len(line) >= limit:",
        VALIDATE_TESTS,
    ),
    Mutant(
        "the-cost-page-counts-one-unpriced-run-at-most",
        "functions/console_api.py",
        "unpriced += 1",
        "unpriced = 1",
        CONSOLE_TESTS,
    ),
    Mutant(
        "a-symbolic-link-in-a-report-is-published",
        "functions/report_publication.py",
        "    if member.issym():\n",
        "    if False:\n",
        REPORT_TESTS,
    ),
]


def copy_tree(destination: Path, tests: tuple[str, ...]) -> None:
    """What the named tests need: the code, their whole test folder (conftest and helpers), the
    tests package's root, events/ and the pytest config."""
    skip = shutil.ignore_patterns("__pycache__")
    for name in ("functions", "pipelines", "events"):
        shutil.copytree(ROOT / name, destination / name, ignore=skip)
    shutil.copy2(ROOT / "pyproject.toml", destination / "pyproject.toml")
    # tests/ is a package (its folders import each other as tests.<folder>): without its __init__.py
    # the copy's rootdir would be tests/ and `pipelines` would resolve to tests/pipelines.
    (destination / "tests").mkdir()
    for name in ("__init__.py", "conftest.py"):
        shutil.copy2(ROOT / "tests" / name, destination / "tests" / name)
    for folder in sorted({Path(test).parent for test in tests}):
        shutil.copytree(ROOT / folder, destination / folder, ignore=skip)


def run_tests(tree: Path, tests: tuple[str, ...]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", *tests],
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    "tests", [GATE_TESTS + INPUT_TESTS + HANDLER_TESTS, PIPELINE_TESTS], ids=["functions", "pipelines"]
)
def test_the_unmutated_copy_passes(tmp_path: Path, tests: tuple[str, ...]) -> None:
    copy_tree(tmp_path, tests)

    result = run_tests(tmp_path, tests)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_the_mutant_is_killed(tmp_path: Path, mutant: Mutant) -> None:
    copy_tree(tmp_path, mutant.tests)
    source = tmp_path / mutant.path
    text = source.read_text()
    assert text.count(mutant.original) == 1, f"{mutant.name}: the edit no longer matches {mutant.path}"
    source.write_text(text.replace(mutant.original, mutant.mutated))

    result = run_tests(tmp_path, mutant.tests)

    # 1: tests ran and one failed (2, 3 or 4 would be a broken run, not a kill).
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert " failed" in result.stdout
