"""Training: read, prepare, split by patient, fit, evaluate (with the champion), save artifacts.

`TrainingPipeline(config).execute(data_path, output_path)` is the Python API; the SageMaker entry
point (`pipelines/train.py`) calls the same code. Artifacts (docs/architecture.md): `model.joblib`
(one Pipeline, preprocessing inside, threshold attached as `decision_threshold_`), `features.json`,
`baseline_statistics.json`, `metrics.json`; the report (`report.md`, PNGs, `subgroups.json`,
`model_card.md`) goes to `report_dir`.
Artifacts are written to a staging directory and moved in only after everything succeeded, so a
failed run never leaves a half-written or overwritten model behind.
"""

import json
import os
import platform
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Optional

import joblib
import numpy as np
import pandas as pd
import sklearn
from threadpoolctl import threadpool_limits

from pipelines import container, schema
from pipelines.data import DatasetError, excluded_rows, read_training_data
from pipelines.drift import compute_baseline
from pipelines.estimators import (
    DEFAULT_ALGORITHM,
    ConfigError,
    algorithm_parameters,
    build_pipeline,
    fit_pipeline,
)
from pipelines.evaluation import choose_threshold, compare_roc_auc, evaluate, patient_split
from pipelines.features import informative_columns
from pipelines.history import HISTORY_MANIFEST, add_history, write_history_artifact
from pipelines.inference import (
    BASELINE_FILE,
    FEATURES_FILE,
    METRICS_FILE,
    MODEL_FILE,
    load_model_dir,
    with_history,
)
from pipelines.tree_scoring import PipelineScorer

DEFAULT_CONFIG: dict[str, Any] = {
    "algorithm": DEFAULT_ALGORITHM,
    "target": schema.DEFAULT_TARGET,
    "seed": 42,
    "validation_fraction": 0.2,
    # Optional fixed decision threshold; by default the F1-maximising cut on training rows.
    "decision_threshold": None,
}
# Patient-history features (pipelines/history.py) and, with them, a second fit without them on the
# same split (the report and card say what history added on this very data). Options of the Python
# API and the job (`history=false`), not of the run request's schema: always on in the workflow.
HISTORY_DEFAULTS: dict[str, Any] = {"history": True, "compare_history": True}


def _flag(value: Any, name: str) -> bool:
    """A boolean hyperparameter (SageMaker passes strings: "true"/"false")."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ConfigError(f"hyperparameter {name}={value!r} must be true or false")


class TrainingResult:
    """What a run produced: `status`, `metrics` (the metrics.json content) and where artifacts are."""

    def __init__(
        self,
        status: str,
        metrics: dict[str, Any],
        model_dir: str,
        report_dir: Optional[str],
        timings: dict[str, float],
    ) -> None:
        self.status = status
        self.metrics = metrics
        self.model_dir = model_dir
        self.report_dir = report_dir
        self.timings = timings

    @property
    def roc_auc(self) -> float:
        return float(self.metrics["model"]["roc_auc"])

    def __repr__(self) -> str:
        return (
            f"TrainingResult(status={self.status!r}, roc_auc={self.roc_auc:.4f}, "
            f"model_dir={self.model_dir!r})"
        )


def make_target(frame: pd.DataFrame, target: str) -> pd.Series:
    """0/1 outcome from schema.POSITIVE_TARGET_VALUES: `<30` (readmitted_30d), `<30` or `>30` (_any)."""
    if target not in schema.POSITIVE_TARGET_VALUES:
        raise ConfigError("unknown target '{}' (choose one of {})".format(target, ", ".join(schema.TARGETS)))
    return frame[schema.TARGET_COLUMN].isin(schema.POSITIVE_TARGET_VALUES[target]).astype(int)


def versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "pandas": pd.__version__,
        "numpy": np.__version__,
        "joblib": joblib.__version__,
    }


@dataclass
class _Split:
    """The usable rows of one training run and their split by whole patients."""

    frame: pd.DataFrame
    y: np.ndarray
    excluded: np.ndarray
    train_mask: np.ndarray
    validation_mask: np.ndarray
    train_frame: pd.DataFrame  # frame[train_mask], taken once (each selection copies the rows)
    validation_frame: pd.DataFrame


@dataclass
class _Evaluated:
    metrics: dict[str, Any]
    baseline: Any
    threshold: float
    validation_probability: np.ndarray
    scorer: PipelineScorer


class TrainingPipeline:
    """Train one model from a CSV file or directory. `config` keys: see DEFAULT_CONFIG plus the
    algorithm's own parameters (e.g. `n_estimators`, `max_depth`, `learning_rate`, `max_iter`)."""

    def __init__(self, config: Optional[Mapping[str, Any]] = None) -> None:
        merged = dict(DEFAULT_CONFIG)
        merged.update({k: v for k, v in (config or {}).items() if v is not None})
        self.config = merged
        self.algorithm = str(merged["algorithm"])
        # Set per training set by execute_frame (schema.detailed_diagnoses_for its size).
        self.detailed_diagnoses: tuple = schema.DETAILED_DIAGNOSIS_COLUMNS
        self.target = str(merged["target"])
        try:
            self.seed = int(merged["seed"])
            self.validation_fraction = float(merged["validation_fraction"])
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"seed and validation_fraction must be numbers: {exc}") from exc
        if self.target not in schema.TARGETS:
            raise ConfigError(
                "unknown target '{}' (choose one of {})".format(self.target, ", ".join(schema.TARGETS))
            )
        if not 0.05 <= self.validation_fraction <= 0.5:
            raise ConfigError(
                f"validation_fraction must be within [0.05, 0.5], got {self.validation_fraction}"
            )
        self.params = algorithm_parameters(self.algorithm, merged)
        options = {**HISTORY_DEFAULTS, **{k: merged[k] for k in HISTORY_DEFAULTS if k in merged}}
        self.history = _flag(options["history"], "history")
        self.compare_history = self.history and _flag(options["compare_history"], "compare_history")
        threshold = merged.get("decision_threshold")
        self.fixed_threshold = None if threshold in (None, "", "None") else float(threshold)

    def execute(
        self,
        data_path: str,
        output_path: str,
        report_dir: Optional[str] = None,
        champion_path: Optional[str] = None,
        make_report: bool = True,
    ) -> TrainingResult:
        """Train and write the artifacts into `output_path` (report into `report_dir`, default
        `output_path/report`). Raises DatasetError (bad data) or ConfigError (bad config)."""
        start = time.perf_counter()
        raw = read_training_data(data_path)
        return self.execute_frame(
            raw, output_path, report_dir, champion_path, make_report, read_seconds=time.perf_counter() - start
        )

    def execute_frame(
        self,
        raw: pd.DataFrame,
        output_path: str,
        report_dir: Optional[str] = None,
        champion_path: Optional[str] = None,
        make_report: bool = True,
        read_seconds: float = 0.0,
    ) -> TrainingResult:
        """`execute` on a frame already read (and validated) by `pipelines.data.read_training_data`.

        The steps, each timed: split whole patients, fit, evaluate (and score the champion on the
        same held-out rows), save the artifacts atomically, and write the report."""
        timings: dict[str, float] = {"read": read_seconds}
        mark = time.perf_counter()
        if self.history:
            # On every row (death/hospice ones included: they are earlier encounters too), before
            # the split: a patient's history is the patient's own, so no row crosses the split.
            raw = add_history(raw)
            timings["history"] = time.perf_counter() - mark
        split = self._split(raw)
        candidates = schema.FEATURE_COLUMNS + (schema.HISTORY_COLUMNS if self.history else ())
        columns = informative_columns(split.train_frame, candidates)
        self.detailed_diagnoses = schema.detailed_diagnoses_for(len(split.train_frame))
        model = build_pipeline(self.algorithm, self.params, self.seed, columns, self.detailed_diagnoses)
        timings["prepare"] = time.perf_counter() - mark

        with threadpool_limits(limits=container.num_threads()):
            mark = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", category=UserWarning)
                fit_pipeline(model, split.train_frame, split.y[split.train_mask])
            timings["fit"] = time.perf_counter() - mark

            mark = time.perf_counter()
            evaluated = self._evaluate(model, split, raw, columns, champion_path)
            timings["evaluate"] = time.perf_counter() - mark
            mark = time.perf_counter()
            evaluated.metrics["history"] = self._history_gain(split, columns, evaluated.metrics["model"])
            if self.compare_history:
                timings["fit_without_history"] = time.perf_counter() - mark

        mark = time.perf_counter()
        self._save(output_path, model, evaluated, columns, timings, mark, raw)

        report_dir = report_dir or os.path.join(output_path, "report")
        if make_report:
            mark = time.perf_counter()
            self._report(report_dir, model, evaluated, split)
            timings["report"] = time.perf_counter() - mark
        return TrainingResult(
            "succeeded", evaluated.metrics, output_path, report_dir if make_report else None, timings
        )

    def _history_gain(self, split: "_Split", columns: Any, model_metrics: dict[str, Any]) -> dict[str, Any]:
        """metrics.json's `history` block: the history columns the model uses and, when compared, the
        held-out ROC/PR AUC of the same algorithm fitted without them on the same split."""
        used = [c for c in columns if c in schema.HISTORY_COLUMNS]
        block: dict[str, Any] = {
            "enabled": self.history,
            "columns": used,
            "ordering": "encounter_id",
        }
        if not self.compare_history:
            return block
        base_columns = [c for c in columns if c not in schema.HISTORY_COLUMNS]
        baseline = build_pipeline(
            self.algorithm, self.params, self.seed, base_columns, self.detailed_diagnoses
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)
            fit_pipeline(baseline, split.train_frame, split.y[split.train_mask])
        probability = PipelineScorer(baseline).positive_probability(split.validation_frame)
        without = evaluate(split.y[split.validation_mask], probability, 0.5)
        block["without_history"] = {"roc_auc": without["roc_auc"], "pr_auc": without["pr_auc"]}
        block["roc_auc_gain"] = float(model_metrics["roc_auc"]) - float(without["roc_auc"])
        block["pr_auc_gain"] = float(model_metrics["pr_auc"]) - float(without["pr_auc"])
        return block

    def _split(self, raw: pd.DataFrame) -> "_Split":
        """The usable rows (death/hospice excluded), their target, and a split by whole patients;
        refused when either side would hold a single outcome class."""
        excluded = excluded_rows(raw, self.target)
        frame = raw[~excluded].reset_index(drop=True)
        y = make_target(frame, self.target).to_numpy()
        if len(frame) < 2 or y.min() == y.max():
            raise DatasetError(
                "single_class",
                "the target '{}' has a single class ({}) in the {} usable rows; "
                "training needs both outcomes".format(self.target, int(y[0]) if len(y) else "-", len(frame)),
            )
        self._check_size(y, None)
        train_mask, validation_mask = patient_split(
            frame[schema.GROUP_COLUMN].to_numpy(), self.validation_fraction, self.seed
        )
        for side, mask in (("training", train_mask), ("validation", validation_mask)):
            if mask.sum() == 0 or y[mask].min() == y[mask].max():
                raise DatasetError(
                    "single_class",
                    f"the {side} patients have a single outcome class; "
                    "the dataset is too small or too uniform to evaluate",
                )
        self._check_size(y, validation_mask)
        return _Split(
            frame, y, excluded, train_mask, validation_mask, frame[train_mask], frame[validation_mask]
        )

    def _check_size(self, y: np.ndarray, validation_mask: Optional[np.ndarray]) -> None:
        """Refuse, before fitting, a dataset too small to evaluate (schema.MIN_HELD_OUT_ROWS says why
        the minimums are what they are): first the whole dataset against `schema.minimum_dataset`,
        then (`validation_mask` given) the held-out patients the split actually drew."""
        needed = schema.minimum_dataset(self.validation_fraction)
        what = (
            f"a ROC AUC worth comparing needs at least {schema.MIN_HELD_OUT_ROWS} held-out rows with "
            f"{schema.MIN_HELD_OUT_PER_CLASS} of each outcome, so at validation_fraction "
            f"{self.validation_fraction:g} a dataset of at least {needed['rows']:,} usable rows with "
            f"{needed['per_class']:,} positives and {needed['per_class']:,} negatives for target "
            f"'{self.target}'" + (" (death/hospice encounters not counted)" if self._excludes() else "")
        )
        if validation_mask is None:
            rows, positives = len(y), int(y.sum())
            if rows < needed["rows"] or min(positives, rows - positives) < needed["per_class"]:
                raise DatasetError(
                    "too_small_to_evaluate",
                    f"the dataset has {rows:,} usable rows with {positives:,} positives and "
                    f"{rows - positives:,} negatives; {what}",
                )
            return
        held_out = y[validation_mask]
        rows, positives = len(held_out), int(held_out.sum())
        if (
            rows < schema.MIN_HELD_OUT_ROWS
            or min(positives, rows - positives) < schema.MIN_HELD_OUT_PER_CLASS
        ):
            raise DatasetError(
                "too_small_to_evaluate",
                f"the held-out patients hold {rows:,} rows with {positives:,} positives and "
                f"{rows - positives:,} negatives; {what} (more patients, or a larger validation_fraction)",
            )

    def _excludes(self) -> bool:
        return self.target in schema.TARGETS_EXCLUDING_DEATH_OR_HOSPICE

    def _evaluate(
        self, model: Any, split: "_Split", raw: pd.DataFrame, columns: Any, champion_path: Optional[str]
    ) -> "_Evaluated":
        """Threshold from the training rows, metrics on the held-out patients, the champion's scores
        on the same rows, and the drift baseline."""
        # The compiled trees give scikit-learn's probabilities exactly, several times faster.
        scorer = PipelineScorer(model)
        # The features step's frame comes back from scoring: the baseline counts it, not a re-run.
        train_probability, prepared = scorer.probability_and_features(split.train_frame)
        threshold = (
            self.fixed_threshold
            if self.fixed_threshold is not None
            else choose_threshold(split.y[split.train_mask], train_probability)
        )
        model.decision_threshold_ = threshold
        validation_probability = scorer.positive_probability(split.validation_frame)
        metrics = self._metrics(
            split.frame, raw, split.y, split.excluded, split.train_mask, split.validation_mask, columns
        )
        metrics["model"] = evaluate(split.y[split.validation_mask], validation_probability, threshold)
        validation_y = split.y[split.validation_mask]
        metrics["champion"], champion_error, champion_probability = self._score_champion(
            champion_path, split.validation_frame, validation_y
        )
        if champion_error:
            metrics["champion_error"] = champion_error
        if champion_probability is not None:
            # The gate's evidence: the paired difference on these very rows, with its interval.
            metrics["comparison"] = compare_roc_auc(
                validation_y, validation_probability, champion_probability
            )
        train_features = prepared.features
        if train_features is None:
            train_features = model.named_steps["features"].transform(split.train_frame)
        baseline = compute_baseline(train_features, train_probability)
        return _Evaluated(metrics, baseline, threshold, validation_probability, scorer)

    def _save(
        self,
        output_path: str,
        model: Any,
        evaluated: "_Evaluated",
        columns: Any,
        timings: dict[str, float],
        started: float,
        raw: pd.DataFrame,
    ) -> None:
        """Write every artifact into a staging folder, then move them in together (a failed save
        leaves the previous artifacts, never half of them). With history, the compact patient
        history of every training encounter travels in the model directory (model.tar.gz)."""
        os.makedirs(output_path, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".staging-", dir=output_path)
        try:
            history = None
            if self.history:
                history = write_history_artifact(
                    raw, staging, {"training_job": os.environ.get("TRAINING_JOB_NAME") or None}
                )
                evaluated.metrics["history"]["artifact"] = {
                    "file": history["file"],
                    "sha256": history["sha256"],
                    "rows": history["rows"],
                }
            self._stage(
                staging, model, evaluated.metrics, evaluated.baseline, columns, evaluated.threshold, history
            )
            timings["save"] = time.perf_counter() - started
            evaluated.metrics["timings_seconds"] = {k: round(v, 3) for k, v in timings.items()}
            with open(os.path.join(staging, METRICS_FILE), "w") as handle:
                json.dump(evaluated.metrics, handle, indent=2, sort_keys=True)
            _commit(staging, output_path)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _report(self, report_dir: str, model: Any, evaluated: "_Evaluated", split: "_Split") -> None:
        """The plots, report.md, subgroups.json and model_card.md; a failure here is a warning (the
        model is already saved). The card names the job SageMaker runs this in (TRAINING_JOB_NAME)."""
        from pipelines.report import write_report

        try:
            with threadpool_limits(limits=container.num_threads()):
                write_report(
                    report_dir,
                    model,
                    evaluated.metrics,
                    split.validation_frame,
                    split.y[split.validation_mask],
                    evaluated.validation_probability,
                    self.seed,
                    scorer=evaluated.scorer,
                    job_name=os.environ.get("TRAINING_JOB_NAME"),
                )
        except Exception as exc:
            print(f"WARNING: report not written: {exc}", file=sys.stderr)

    def _metrics(
        self,
        frame: pd.DataFrame,
        raw: pd.DataFrame,
        y: np.ndarray,
        excluded: np.ndarray,
        train_mask: np.ndarray,
        validation_mask: np.ndarray,
        columns: Any,
    ) -> dict[str, Any]:
        groups = frame[schema.GROUP_COLUMN]
        return {
            "target": self.target,
            "algorithm": self.algorithm,
            "seed": self.seed,
            "validation_fraction": self.validation_fraction,
            "parameters": {k: v for k, v in self.params.items()},
            "rows": {
                "training": int(train_mask.sum()),
                "validation": int(validation_mask.sum()),
                "excluded_death_or_hospice": int(excluded.sum()),
                "input": len(raw),
            },
            "patients": {
                "training": int(groups[train_mask].nunique()),
                "validation": int(groups[validation_mask].nunique()),
            },
            "positive_share": {
                "training": float(y[train_mask].mean()),
                "validation": float(y[validation_mask].mean()),
            },
            "threshold_rule": "fixed" if self.fixed_threshold is not None else "max_f1_on_training_rows",
            "features": list(columns),
            "versions": versions(),
        }

    def _score_champion(
        self, champion_path: Optional[str], validation_frame: pd.DataFrame, y: np.ndarray
    ) -> Any:
        """Score the champion on the same held-out rows; never fail the run because of it.

        Returns (its metrics block, why it could not be scored, its probabilities on the rows): the
        probabilities feed the paired comparison with the new model."""
        if not champion_path or not os.path.exists(champion_path) or not _has_content(champion_path):
            return None, None, None
        try:
            champion = load_model_dir(champion_path)
            # A champion with history features gets them as it would at scoring (its own training
            # history plus these rows); one without ignores the columns.
            probability = champion.scorer.positive_probability(with_history(champion, validation_frame))
            return evaluate(y, probability, champion.threshold), None, probability
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            print(f"WARNING: champion could not be scored: {reason}", file=sys.stderr)
            return None, reason, None

    def _stage(
        self,
        staging: str,
        model: Any,
        metrics: dict[str, Any],
        baseline: dict[str, Any],
        columns: Any,
        threshold: float,
        history: Optional[dict[str, Any]] = None,
    ) -> None:
        joblib.dump(model, os.path.join(staging, MODEL_FILE), compress=3)
        encoder = model.named_steps["encode"]
        features = {
            "version": 1,
            "target": self.target,
            "algorithm": self.algorithm,
            "threshold": threshold,
            "id_column": schema.ID_COLUMN,
            "columns": list(columns),
            "required_columns": [
                c for c in schema.REQUIRED_SCORING_COLUMNS if c == schema.ID_COLUMN or c in columns
            ],
            "types": {
                c: ("numeric" if c in schema.MODEL_NUMERIC_COLUMNS else "categorical") for c in columns
            },
            "categories": encoder.categories_,
            # ICD-9 categories frequent in training, else chapters (features.py EncounterFeatures);
            # chapters only for a small training set (schema.detailed_diagnoses_for).
            "diagnosis_grouping": "icd9_category_or_chapter" if self.detailed_diagnoses else "icd9_chapters",
            "versions": metrics["versions"],
        }
        if history is not None:
            features["history"] = {
                "columns": [c for c in columns if c in schema.HISTORY_COLUMNS],
                "file": history["file"],
                "manifest": HISTORY_MANIFEST,
                "sha256": history["sha256"],
                "ordering": history["ordering"],
            }
        with open(os.path.join(staging, FEATURES_FILE), "w") as handle:
            json.dump(features, handle, indent=2, sort_keys=True)
        with open(os.path.join(staging, BASELINE_FILE), "w") as handle:
            json.dump(baseline, handle, indent=2, sort_keys=True)


def _has_content(path: str) -> bool:
    if os.path.isfile(path):
        return True
    return any(files for _root, _dirs, files in os.walk(path))


def _commit(staging: str, output_path: str) -> None:
    """Move every staged artifact into place (renames within one file system)."""
    for name in sorted(os.listdir(staging)):
        os.replace(os.path.join(staging, name), os.path.join(output_path, name))
