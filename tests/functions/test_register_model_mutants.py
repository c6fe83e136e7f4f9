"""RegisterModel files the run's provenance on the version: what the registry and the console show.

Written for the mutation run (docs/mutation.md): the other RegisterModel tests check the scoring
model and the gate, and left the dataset, the algorithm and the gate's reasons unchecked, so a
version filed without them (a lost record a reader of /models would notice) passed.
"""

from __future__ import annotations

import copy

import register_model
from registry import Registry
from tests.functions.helpers import TABLE, Aws, load_event, start_run, with_training_output


def test_the_version_records_its_dataset_algorithm_job_artifact_and_the_gates_reasons(aws: Aws) -> None:
    event = copy.deepcopy(load_event("register_model.json"))
    run, training = event["run"], event["training"]
    registry = Registry(TABLE, aws.dynamodb)
    start_run(registry, run)

    result = register_model.handler(with_training_output(event), None)

    item = registry.get_version(result["modelName"], result["version"])
    assert item is not None
    assert item["dataset_uri"] == "s3://readmission-local-artifactbucket/datasets/diabetic_data.csv.gz"
    assert item["algorithm"] == "HistGradientBoosting"
    assert item["training_job"] == training["jobName"]
    assert item["artifact_uri"] == training["artifactUri"]
    assert item["run_id"] == run["runId"]
    assert item["decision_reasons"] == [
        "ROC AUC 0.6712 meets the minimum 0.6000",
        "no champion yet: the model is compared with the minimum only",
    ]
