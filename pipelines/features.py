"""Feature preparation that lives inside the saved scikit-learn Pipeline.

Everything that turns raw encounter columns into model inputs is a transformer here, so scoring
raw rows (batch transform, the Python API) applies exactly what training applied. Transforms are
vectorised: per-row Python would cap batch scoring far below 100,000 rows/s.
"""

from collections.abc import Sequence
from typing import Optional

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from pipelines import schema

# ICD-9-CM chapters by the numeric code's lower bound (codes 001-999). Diabetes (250.xx) gets its
# own group because this cohort is selected on it; V (supplementary) and E (external causes)
# codes are groups of their own.
ICD9_CHAPTERS = (
    (1, "infectious"),
    (140, "neoplasms"),
    (240, "endocrine"),
    (280, "blood"),
    (290, "mental"),
    (320, "nervous"),
    (390, "circulatory"),
    (460, "respiratory"),
    (520, "digestive"),
    (580, "genitourinary"),
    (630, "pregnancy"),
    (680, "skin"),
    (710, "musculoskeletal"),
    (740, "congenital"),
    (760, "perinatal"),
    (780, "symptoms"),
    (800, "injury"),
)
_CHAPTER_BOUNDS = np.array([lower for lower, _name in ICD9_CHAPTERS], dtype=float)
_CHAPTER_NAMES = np.array([name for _lower, name in ICD9_CHAPTERS], dtype=object)


def icd9_group_of_code(code: str) -> Optional[str]:
    """The group of one ICD-9 code string (None when it is not an ICD-9 code)."""
    text = str(code).strip().upper()
    if not text:
        return None
    if text[0] == "V":
        return "supplementary_v"
    if text[0] == "E":
        return "external_e"
    try:
        value = float(text)
    except ValueError:
        return None
    if not 1 <= value < 1000:
        return None
    if 250 <= value < 251:
        return "diabetes"
    return str(_CHAPTER_NAMES[np.searchsorted(_CHAPTER_BOUNDS, value, side="right") - 1])


def icd9_groups(values: pd.Series) -> np.ndarray:
    """Vectorised grouping: classify each distinct code once, then broadcast by category codes."""
    categorical = pd.Categorical(values)
    mapped = np.array([icd9_group_of_code(c) for c in categorical.categories] + [None], dtype=object)
    codes = np.asarray(categorical.codes)  # -1 (missing) picks the trailing None
    result = mapped[codes]
    result[pd.isna(result)] = np.nan
    return result


class EncounterFeatures(BaseEstimator, TransformerMixin):
    """Raw encounter columns -> the model's feature frame.

    Selects the feature columns (absent optional ones become missing, so partial extracts still
    score), groups the diagnosis codes into ICD-9 chapters and leaves identifiers and the target out.
    """

    def __init__(self, columns: Sequence[str] = schema.FEATURE_COLUMNS) -> None:
        self.columns = columns

    def fit(self, frame: pd.DataFrame, y: object = None) -> "EncounterFeatures":
        self.feature_names_ = list(self.columns)
        return self

    def transform(self, frame: pd.DataFrame) -> pd.DataFrame:
        missing_required = [
            c for c in schema.REQUIRED_SCORING_COLUMNS if c in self.feature_names_ and c not in frame.columns
        ]
        if missing_required:
            raise ValueError("missing required column(s): {}".format(", ".join(missing_required)))
        out = {}
        for column in self.feature_names_:
            if column not in frame.columns:
                out[column] = np.full(
                    len(frame), np.nan, dtype=float if column in schema.MODEL_NUMERIC_COLUMNS else object
                )
            elif column in schema.DIAGNOSIS_COLUMNS:
                out[column] = pd.Series(icd9_groups(frame[column]), index=frame.index, dtype=object)
            elif column in schema.MODEL_NUMERIC_COLUMNS:
                out[column] = frame[column].to_numpy()
            else:
                # dtype=object explicitly: newer pandas would infer its slower string dtype.
                out[column] = pd.Series(category_text(frame[column]), index=frame.index, dtype=object)
        return pd.DataFrame(out, index=frame.index, columns=self.feature_names_)


def informative_columns(
    frame: pd.DataFrame, columns: Sequence[str], max_top_share: float = 0.999
) -> list[str]:
    """The columns of `frame` not (nearly) constant: one value in >= max_top_share of the rows.

    Several medication flags (examide, citoglipton, ...) are "No" for virtually every encounter:
    they cannot split anything, yet cost time in every fit and every scored batch.
    """
    kept = []
    for column in columns:
        counts = frame[column].value_counts(dropna=False)
        if len(counts) > 1 and counts.iloc[0] < max_top_share * len(frame):
            kept.append(column)
    return kept


class TabularEncoder(BaseEstimator, TransformerMixin):
    """Feature frame -> float matrix: numeric columns as-is, categories as integer codes.

    Categories are learned at fit (most frequent first, rare ones pooled as missing); unknown
    values at scoring time become missing.
    Categories map through pandas' hash tables, which stays fast on 100k-row batches.
    """

    def __init__(
        self,
        numeric: Sequence[str] = schema.NUMERIC_COLUMNS,
        categorical: Sequence[str] = tuple(
            c for c in schema.FEATURE_COLUMNS if c not in schema.NUMERIC_COLUMNS
        ),
        min_count: int = 10,
        max_categories: int = 250,
        missing_value: float = np.nan,
    ) -> None:
        self.numeric = numeric
        self.categorical = categorical
        self.min_count = min_count
        self.max_categories = max_categories
        self.missing_value = missing_value

    def fit(self, frame: pd.DataFrame, y: object = None) -> "TabularEncoder":
        # The output layout is fixed by the constructor (numeric block, then categorical block) so
        # the estimator's categorical mask is known before fitting; see `categorical_mask`.
        self.numeric_ = list(self.numeric)
        self.categorical_ = list(self.categorical)
        self.categories_: dict[str, list[str]] = {}
        for column in self.categorical_:
            counts = pd.Series(frame[column]).value_counts(dropna=True)
            kept = counts[counts >= self.min_count].index[: self.max_categories]
            self.categories_[column] = [str(v) for v in kept]
        self.feature_names_ = self.numeric_ + self.categorical_
        return self

    def categorical_mask(self) -> np.ndarray:
        """Which output columns are categorical (HistGradientBoosting's `categorical_features`)."""
        return np.array([False] * len(self.numeric) + [True] * len(self.categorical))

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        # Column-major: every column is written (and later read by the tree scorer) contiguously.
        out = np.empty((len(frame), len(self.feature_names_)), dtype=float, order="F")
        for i, column in enumerate(self.numeric_):
            out[:, i] = (
                pd.to_numeric(frame[column], errors="coerce")
                if frame[column].dtype == object
                else frame[column].to_numpy(dtype=float)
            )
        offset = len(self.numeric_)
        for j, column in enumerate(self.categorical_):
            codes = category_codes(frame[column].to_numpy(), self.categories_[column])
            target = out[:, offset + j]
            target[:] = codes
            # -1 marks missing and unseen values alike: both score as "missing".
            target[codes < 0] = np.nan
        if not np.isnan(self.missing_value):
            out[np.isnan(out)] = self.missing_value
        return out

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        return np.array(self.feature_names_, dtype=object)


def category_codes(values: np.ndarray, categories: Sequence[str]) -> np.ndarray:
    """Position of each value in `categories`; -1 for missing or unseen values (hash lookup)."""
    # Both sides as object Indexes: pandas >= 3 would otherwise infer its string dtype for the
    # 100k values first, which costs 3-4x the lookup itself.
    target = pd.Index(values, dtype=object, copy=False)
    return pd.Index(list(categories), dtype=object).get_indexer(target)


def category_text(values: pd.Series) -> np.ndarray:
    """Category values as text objects (missing stays NaN), whatever dtype the caller built.

    The CSV reader already yields text; frames built in code may hold ints (6) or floats (6.0 where
    a column had missing values): both must match the learned category "6".
    """
    if values.dtype == object:
        array = values.to_numpy()
        if len(array) == 0 or isinstance(array[0], str) or pd.isna(array[0]):
            return array
    text = values.astype(object).to_numpy().copy()
    present = ~pd.isna(text)
    text[present] = [_as_text(v) for v in text[present]]
    text[~present] = np.nan
    return text


def _as_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value)
