"""Batch scoring through the Python API: `InferencePipeline(model_dir, baseline).execute(csv, out)`.

Uses the same reader, model loading and scoring as the SageMaker serving functions
(pipelines/inference.py) and the same drift computation as the processing job (pipelines/drift.py),
so the API, batch transform and the drift job cannot disagree.
"""

import json
import os
import time
from typing import Any, Optional

from pipelines.drift import count_features, count_predictions, counts_report, merge_counts, write_report
from pipelines.inference import (
    load_model_dir,
    not_scored_counts,
    predictions_csv,
    read_scoring_file,
    score_with_features,
    scored_mask,
    with_history,
)

PREDICTIONS_FILE = "predictions.csv"


class InferenceResult:
    """What a scoring run produced: `prediction_count` (output rows, one per input row), of which
    `scored_count` were scored and `not_scored` (by reason, e.g. `{"expired": 2}`) were not, output
    paths, the drift report and timings."""

    def __init__(
        self,
        prediction_count: int,
        predictions_path: str,
        drift: Optional[dict[str, Any]],
        drift_paths: dict[str, str],
        timings: dict[str, float],
        not_scored: Optional[dict[str, int]] = None,
    ) -> None:
        self.status = "succeeded"
        self.prediction_count = prediction_count
        self.not_scored = dict(not_scored or {})
        self.scored_count = prediction_count - sum(self.not_scored.values())
        self.predictions_path = predictions_path
        self.drift = drift
        self.drift_paths = drift_paths
        self.timings = timings

    def __repr__(self) -> str:
        status = self.drift["status"] if self.drift else "-"
        return (
            f"InferenceResult(prediction_count={self.prediction_count}, scored_count={self.scored_count}, "
            f"not_scored={self.not_scored!r}, drift={status!r})"
        )


class InferencePipeline:
    """Score raw encounter CSVs with a trained model directory (or its model.tar.gz)."""

    def __init__(self, model_dir: str, baseline_statistics_path: Optional[str] = None) -> None:
        self.bundle = load_model_dir(model_dir)
        if baseline_statistics_path:
            with open(baseline_statistics_path) as handle:
                self.bundle.baseline = json.load(handle)

    def execute(self, input_csv: str, output_dir: str, compute_drift: bool = True) -> InferenceResult:
        """Write `predictions.csv` (encounter_id, probability, prediction, not_scored_reason) and,
        when a baseline is known, `drift_report.json` / `drift_report.md` into `output_dir`. The drift
        counts are those of the scored rows (the death/hospice rows are neither scored nor counted)."""
        timings: dict[str, float] = {}
        start = time.perf_counter()
        frame = read_scoring_file(input_csv, keep=self.bundle.input_columns)
        timings["read"] = time.perf_counter() - start
        mark = time.perf_counter()
        # The whole file at once: every row's history from the file's earlier encounters of the
        # patient and the model's training history (pipelines/history.py).
        frame = with_history(self.bundle, frame)
        timings["history"] = time.perf_counter() - mark
        mark = time.perf_counter()
        predictions, prepared = score_with_features(self.bundle, frame)
        timings["score"] = time.perf_counter() - mark
        mark = time.perf_counter()
        os.makedirs(output_dir, exist_ok=True)
        path = os.path.join(output_dir, PREDICTIONS_FILE)
        with open(path, "w") as handle:
            handle.write(predictions_csv(predictions))
        timings["write"] = time.perf_counter() - mark
        report, paths = None, {}
        if compute_drift and self.bundle.baseline is not None:
            mark = time.perf_counter()
            scored = scored_mask(predictions)
            features = prepared.features
            if features is None:
                features = self.bundle.model.named_steps["features"].transform(frame[scored])
            # What scoring prepared, not a second pass over the rows (the report drift_report gives).
            encoding = None if prepared.encoded is None else (prepared.encoded, prepared.encoder)
            counts = merge_counts(
                count_features(self.bundle.baseline, features, encoding),
                count_predictions(self.bundle.baseline, predictions["probability"].to_numpy()[scored]),
            )
            report = counts_report(self.bundle.baseline, counts)
            paths = write_report(report, output_dir)
            timings["drift"] = time.perf_counter() - mark
        return InferenceResult(len(predictions), path, report, paths, timings, not_scored_counts(predictions))
