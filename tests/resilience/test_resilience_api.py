"""Bad requests to `POST /training`, through the template's API route and the real ApiFunction handler on
the local runtime: each answers 400 with the offending fields named and starts no execution.
(Unauthenticated calls never reach the function: API Gateway's IAM auth, proven on the transformed
template by tests/template, listed in the table.)
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from emulator.runtime import LocalRuntime

from .stack import nothing_lost, snapshot
from .table import Row, first_words


def _executions(runtime: LocalRuntime) -> set[str]:
    pages = runtime.sfn.get_paginator("list_executions").paginate(stateMachineArn=runtime.state_machine_arn)
    return {e["name"] for page in pages for e in page["executions"]}


def _dataset(runtime: LocalRuntime) -> str:
    return runtime.s3_uri(runtime.datasets_prefix + "excel_export.csv")  # the baseline's upload


# id -> (what the row says was sent, body builder, the fields the 400 must name)
CASES: dict[str, tuple[str, Callable[[LocalRuntime], str], list[str]]] = {
    "invalid-json": ("a body that is not JSON", lambda rt: '{"datasetUri": "s3://', ["body"]),
    "missing-fields": (
        "a JSON object without datasetUri",
        lambda rt: json.dumps({"modelName": "medication-adherence-model"}),
        ["datasetUri"],
    ),
    "unknown-algorithm": (
        "algorithm XGBoost",
        lambda rt: json.dumps({"datasetUri": _dataset(rt), "algorithm": "XGBoost"}),
        ["algorithm"],
    ),
    "dataset-outside-the-bucket": (
        "a datasetUri in another bucket",
        lambda rt: json.dumps({"datasetUri": "s3://someone-elses-bucket/datasets/x.csv"}),
        ["datasetUri"],
    ),
    # issue 11: hyperparameters outside their type or range used to answer 202 and fail (or train for an hour)
    "negative-max-iter": (
        "hyperparameters max_iter -5",
        lambda rt: json.dumps({"datasetUri": _dataset(rt), "hyperparameters": {"max_iter": -5}}),
        ["hyperparameters.max_iter"],
    ),
    "text-max-iter": (
        'hyperparameters max_iter "lots"',
        lambda rt: json.dumps({"datasetUri": _dataset(rt), "hyperparameters": {"max_iter": "lots"}}),
        ["hyperparameters.max_iter"],
    ),
    "nan-max-iter": (
        "hyperparameters max_iter NaN",
        lambda rt: '{"datasetUri": ' + json.dumps(_dataset(rt)) + ', "hyperparameters": {"max_iter": NaN}}',
        ["hyperparameters.max_iter"],
    ),
    "infinite-learning-rate": (
        "hyperparameters learning_rate Infinity",
        lambda rt: (
            '{"datasetUri": ' + json.dumps(_dataset(rt)) + ', "hyperparameters": {"learning_rate": Infinity}}'
        ),
        ["hyperparameters.learning_rate"],
    ),
    "validation-fraction-0.99": (
        "hyperparameters validation_fraction 0.99",
        lambda rt: json.dumps({"datasetUri": _dataset(rt), "hyperparameters": {"validation_fraction": 0.99}}),
        ["hyperparameters.validation_fraction"],
    ),
    "hundred-million-iterations": (
        "hyperparameters max_iter 100000000",
        lambda rt: json.dumps({"datasetUri": _dataset(rt), "hyperparameters": {"max_iter": 100_000_000}}),
        ["hyperparameters.max_iter"],
    ),
    "missing-dataset-with-a-key": (
        "an idempotencyKey and a datasetUri that does not exist",
        lambda rt: json.dumps(
            {"datasetUri": rt.s3_uri(rt.datasets_prefix + "missing.csv"), "idempotencyKey": "no-such-data"}
        ),
        ["datasetUri"],
    ),
    "oversized-body": (
        "a 70 KB body",
        lambda rt: json.dumps({"datasetUri": _dataset(rt), "hyperparameters": {"note": "x" * 70_000}}),
        ["body"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_training_request_is_a_400_naming_the_field_and_starts_nothing(
    case: str, runtime: LocalRuntime, baseline: dict[str, Any], resilience_row: Callable[[Row], None]
) -> None:
    described, body, fields = CASES[case]
    started = _executions(runtime)
    before = snapshot(runtime)

    response = runtime.api.request(
        "POST", "/training", body=body(runtime), headers={"Content-Type": "application/json"}
    )

    assert response.status == 400, response.body
    answer = response.json()
    assert [e["field"] for e in answer["errors"]] == fields
    assert all(e["message"] for e in answer["errors"])
    assert _executions(runtime) == started  # no execution listed
    delta = nothing_lost(before, snapshot(runtime), run_ids=[])
    assert not delta.new_keys and not delta.new_items

    resilience_row(
        Row(
            "Bad API requests",
            case.replace("-", " ").capitalize(),
            f"POST /training with {described}",
            "400",
            "fields: " + ", ".join(fields),
            first_words(answer["errors"][0]["message"], words=10),
            "nothing written, no execution started",
            "yes",
        )
    )
