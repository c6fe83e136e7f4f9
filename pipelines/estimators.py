"""The three supported algorithms, each as ONE scikit-learn Pipeline with its preprocessing inside.

Defaults are chosen for this dataset on 2 cores: HistGradientBoosting (native categorical splits,
fits 100k rows in seconds); RandomForest bounded in depth and leaf size so the model stays small;
LogisticRegression on one-hot categories and scaled counts as the interpretable baseline.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from pipelines import schema
from pipelines.errors import ConfigError
from pipelines.features import EncounterFeatures, TabularEncoder

ALGORITHMS = ("HistGradientBoosting", "RandomForest", "LogisticRegression")
DEFAULT_ALGORITHM = "HistGradientBoosting"

# Hyperparameters each algorithm accepts from the job (strings arrive from SageMaker).
_PARAMETER_TYPES = {
    "HistGradientBoosting": {
        "max_iter": int,
        "learning_rate": float,
        "max_depth": int,
        "max_leaf_nodes": int,
        "min_samples_leaf": int,
        "l2_regularization": float,
    },
    "RandomForest": {"n_estimators": int, "max_depth": int, "min_samples_leaf": int, "max_features": float},
    "LogisticRegression": {"C": float, "max_iter": int},
}
# HistGradientBoosting: chosen by the mean held-out ROC AUC over seeds 42, 7, 1, 3, 11 (full data):
# 23 leaves x 80 trees x 0.08 -> .6732/.6749/.6817/.6781/.6807, mean .6777 (also best without seed
# 42); 15 x 120 x 0.1 -> mean .6759; 31 x 80 x 0.08 -> .6771; 31 x 60 x 0.1 -> .6760; 15 x 240 x
# 0.05 -> .6768. About as many split nodes as 15 x 120 (1,760 vs 1,680): the same scoring cost.
_DEFAULTS: dict[str, dict[str, Any]] = {
    "HistGradientBoosting": {
        "max_iter": 80,
        "learning_rate": 0.08,
        "max_depth": None,
        "max_leaf_nodes": 23,
        "min_samples_leaf": 100,
        "l2_regularization": 1.0,
    },
    "RandomForest": {"n_estimators": 100, "max_depth": 12, "min_samples_leaf": 20, "max_features": 0.3},
    "LogisticRegression": {"C": 0.5, "max_iter": 500},
}


def algorithm_parameters(algorithm: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults of `algorithm` updated with the overrides it understands (others are ignored)."""
    if algorithm not in ALGORITHMS:
        raise ConfigError(
            "unknown algorithm '{}' (choose one of {})".format(algorithm, ", ".join(ALGORITHMS))
        )
    params = dict(_DEFAULTS[algorithm])
    for name, kind in _PARAMETER_TYPES[algorithm].items():
        value = overrides.get(name)
        if value is None or value == "":
            continue
        if isinstance(value, str) and value.lower() == "none":
            params[name] = None
            continue
        try:
            params[name] = kind(float(value)) if kind is int else kind(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"hyperparameter {name}={value!r} is not a {kind.__name__}") from exc
    return params


def build_pipeline(
    algorithm: str,
    params: Mapping[str, Any],
    seed: int,
    columns: Sequence[str] = schema.FEATURE_COLUMNS,
    detailed_diagnoses: Sequence[str] = schema.DETAILED_DIAGNOSIS_COLUMNS,
) -> Pipeline:
    """An unfitted Pipeline: raw encounter frame in, readmission probability out.

    `columns` are the raw feature columns the model uses (training drops near-constant ones);
    `detailed_diagnoses` the diagnoses seen by ICD-9 category (training passes none for a small
    dataset: `schema.detailed_diagnoses_for`), the others by chapter, as native categories.
    """
    numeric = [c for c in columns if c in schema.MODEL_NUMERIC_COLUMNS]
    categorical = [c for c in columns if c not in schema.MODEL_NUMERIC_COLUMNS]
    features = EncounterFeatures(columns=list(columns), detailed_diagnoses=tuple(detailed_diagnoses))
    if algorithm == "HistGradientBoosting":
        # The finer diagnosis groups as training-fitted readmission rates (TabularEncoder).
        rated = [c for c in categorical if c in detailed_diagnoses]
        categorical = [c for c in categorical if c not in rated]
        encoder = TabularEncoder(numeric, categorical, target_encoded=rated)
        model = HistGradientBoostingClassifier(
            random_state=seed, early_stopping=False, categorical_features=encoder.categorical_mask(), **params
        )
        return Pipeline([("features", features), ("encode", encoder), ("model", model)])
    if algorithm == "RandomForest":
        # sklearn 1.2 forests reject NaN: missing and unknown become -1, below every real value.
        encoder = TabularEncoder(numeric, categorical, missing_value=-1.0)
        model = RandomForestClassifier(random_state=seed, n_jobs=-1, **params)
        return Pipeline([("features", features), ("encode", encoder), ("model", model)])
    if algorithm == "LogisticRegression":
        encoder = TabularEncoder(numeric, categorical)
        mask = encoder.categorical_mask()
        counts = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
        # Missing and unknown categories share one indicator column (code -1).
        categories = Pipeline(
            [
                ("impute", SimpleImputer(strategy="constant", fill_value=-1.0)),
                ("onehot", OneHotEncoder(handle_unknown="ignore")),
            ]
        )
        columns = ColumnTransformer(
            [
                ("counts", counts, list(np.flatnonzero(~mask))),
                ("categories", categories, list(np.flatnonzero(mask))),
            ]
        )
        model = LogisticRegression(random_state=seed, **params)
        return Pipeline([("features", features), ("encode", encoder), ("columns", columns), ("model", model)])
    raise ConfigError(f"unknown algorithm '{algorithm}'")


def fit_pipeline(model: Pipeline, frame: pd.DataFrame, y: np.ndarray) -> Pipeline:
    """Fit `model` (a `build_pipeline` Pipeline) on training rows, with their patients as the
    encoder's cross-fitting groups: a training row's diagnosis rates then contain no outcome of its
    own patient's encounters (earlier or later ones), only other patients'."""
    groups = frame[schema.GROUP_COLUMN].to_numpy() if schema.GROUP_COLUMN in frame.columns else None
    return model.fit(frame, y, encode__groups=groups)
