"""The one definition of the dataset (UCI "Diabetes 130-US hospitals", 50 columns).

Training, batch inference and drift import this module inside SageMaker's scikit-learn container, and
the dataset-validation Lambda reads its JSON copy (`dataset_schema.json`, written by
`python -m pipelines.bundle`). It must therefore stay standard-library only and Python 3.9.
"""

SCHEMA_VERSION = 1

ID_COLUMN = "encounter_id"
GROUP_COLUMN = "patient_nbr"
TARGET_COLUMN = "readmitted"
MISSING_MARKER = "?"
TARGET_VALUES = ("NO", ">30", "<30")
# The value of `readmitted` that the default target (30-day readmission) treats as positive.
POSITIVE_30D = "<30"

# discharge_disposition_id codes for death (11, 19, 20, 21) and hospice (13, 14): such encounters
# cannot be readmitted, so the 30-day target leaves them out of training and evaluation, and scoring
# leaves them unscored (with the reason below) and out of the drift statistics.
EXPIRED_DISCHARGE_DISPOSITIONS = (11, 19, 20, 21)
HOSPICE_DISCHARGE_DISPOSITIONS = (13, 14)
EXCLUDED_DISCHARGE_DISPOSITIONS = tuple(
    sorted((*EXPIRED_DISCHARGE_DISPOSITIONS, *HOSPICE_DISCHARGE_DISPOSITIONS))
)
DISCHARGE_COLUMN = "discharge_disposition_id"
# The `not_scored_reason` a predictions row carries for each excluded code.
NOT_SCORED_REASONS = {
    **{code: "expired" for code in EXPIRED_DISCHARGE_DISPOSITIONS},
    **{code: "hospice" for code in HOSPICE_DISCHARGE_DISPOSITIONS},
}
# Targets whose definition leaves the death/hospice encounters out (see EXCLUDED_DISCHARGE_DISPOSITIONS).
TARGETS_EXCLUDING_DEATH_OR_HOSPICE = ("readmitted_30d",)

# Targets the training job accepts (hyperparameter `target`).
TARGETS = ("readmitted_30d", "readmitted_any")
# The values of `readmitted` each target counts as positive (every other value is negative). Training
# builds its 0/1 outcome from this; the validation Lambda reads it from the JSON copy to refuse a file
# with a single class for the run's target before a training job is paid for.
POSITIVE_TARGET_VALUES = {"readmitted_30d": (POSITIVE_30D,), "readmitted_any": (">30", "<30")}
DEFAULT_TARGET = "readmitted_30d"

# The smallest evaluation worth comparing with a champion: held-out (validation) rows, and held-out
# rows of each outcome. ROC AUC is a statement about positive/negative pairs, so its precision is set
# by the smaller class: by Hanley & McNeil's standard error, at this model's AUC (~0.67) and ~11%
# prevalence, 50 held-out positives give SE ~0.04 (a 95% interval of about +/-0.085), while 10 give
# ~0.09 (+/-0.18: the whole way from a coin toss to a good model) and the 4 held-out rows say
# nothing. 50 events (and 50 non-events) is also the lower bound the clinical-prediction validation
# literature gives (Vergouwe et al. 2005; 100 recommended). 200 rows keep the threshold metrics
# (precision, recall, the flagged share) from resting on a handful of encounters.
MIN_HELD_OUT_ROWS = 200
MIN_HELD_OUT_PER_CLASS = 50


def minimum_dataset(validation_fraction: float) -> dict[str, int]:
    """The usable rows (death/hospice not counted for the 30-day target) and rows of each outcome a
    whole dataset needs so that `validation_fraction` of it holds the held-out minimums above.

    The training job refuses a smaller dataset before fitting, and the validation Lambda (from the
    JSON copy) when its sample is the whole file; both say these numbers in the message.
    """

    def need(held_out: int) -> int:
        # The ceiling, without importing math (this module imports nothing); rounded first so that
        # 50 / 0.2 is 250, not 251.
        return int(-(-round(held_out / validation_fraction, 6) // 1))

    return {"rows": need(MIN_HELD_OUT_ROWS), "per_class": need(MIN_HELD_OUT_PER_CLASS)}


MEDICATION_COLUMNS = (
    "metformin",
    "repaglinide",
    "nateglinide",
    "chlorpropamide",
    "glimepiride",
    "acetohexamide",
    "glipizide",
    "glyburide",
    "tolbutamide",
    "pioglitazone",
    "rosiglitazone",
    "acarbose",
    "miglitol",
    "troglitazone",
    "tolazamide",
    "examide",
    "citoglipton",
    "insulin",
    "glyburide-metformin",
    "glipizide-metformin",
    "glimepiride-pioglitazone",
    "metformin-rosiglitazone",
    "metformin-pioglitazone",
)

# Every column of the published file, in its order (a header-less scoring file uses this order).
COLUMNS = (
    "encounter_id",
    "patient_nbr",
    "race",
    "gender",
    "age",
    "weight",
    "admission_type_id",
    "discharge_disposition_id",
    "admission_source_id",
    "time_in_hospital",
    "payer_code",
    "medical_specialty",
    "num_lab_procedures",
    "num_procedures",
    "num_medications",
    "number_outpatient",
    "number_emergency",
    "number_inpatient",
    "diag_1",
    "diag_2",
    "diag_3",
    "number_diagnoses",
    "max_glu_serum",
    "A1Cresult",
    *MEDICATION_COLUMNS,
    "change",
    "diabetesMed",
    "readmitted",
)

NUMERIC_COLUMNS = (
    "time_in_hospital",
    "num_lab_procedures",
    "num_procedures",
    "num_medications",
    "number_outpatient",
    "number_emergency",
    "number_inpatient",
    "number_diagnoses",
)
# The three *_id columns are codes (see data/IDs_mapping.csv), not quantities: categories.
CODED_ID_COLUMNS = ("admission_type_id", "discharge_disposition_id", "admission_source_id")
DIAGNOSIS_COLUMNS = ("diag_1", "diag_2", "diag_3")
# Diagnoses the model sees by ICD-9 category (3 digits, diabetes by its 4th digit) where the training
# data has enough encounters of it, instead of by chapter (pipelines/features.py EncounterFeatures).
DETAILED_DIAGNOSIS_COLUMNS = DIAGNOSIS_COLUMNS
# Below this many training rows the diagnoses stay chapters: the finer groups need data. Measured
# (seed 42, HistGradientBoosting): 3,200 training rows 0.6059 ROC AUC with chapters, 0.5911 with the
# finer groups (LogisticRegression 0.6048 / 0.5979); the full data's ~81,000 rows gain +0.0055 mean over
# 5 seeds. The boundary between them was not measured: 20,000 is a conservative pick.
MIN_ROWS_FOR_DIAGNOSIS_CATEGORIES = 20_000


def detailed_diagnoses_for(training_rows: int) -> tuple:
    """The diagnoses to see by ICD-9 category for a training set of this size (none when small)."""
    return DETAILED_DIAGNOSIS_COLUMNS if training_rows >= MIN_ROWS_FOR_DIAGNOSIS_CATEGORIES else ()


# Columns whose literal value "None" means "not measured": a category, never a missing value.
NOT_MEASURED_COLUMNS = ("max_glu_serum", "A1Cresult")

CATEGORICAL_COLUMNS = tuple(
    c for c in COLUMNS if c not in NUMERIC_COLUMNS and c not in (ID_COLUMN, GROUP_COLUMN, TARGET_COLUMN)
)
# Model inputs: everything but identifiers (leakage: a patient's id says nothing about the next
# patient) and the target.
FEATURE_COLUMNS = tuple(c for c in COLUMNS if c not in (ID_COLUMN, GROUP_COLUMN, TARGET_COLUMN))

# Patient-history columns (pipelines/history.py): computed from the same patient's encounters with a
# strictly smaller encounter_id (the dataset's only time proxy), never read from a user's file
# except an enriched scoring part the EnrichHistory job wrote. Model inputs like the others.
HISTORY_NUMERIC_COLUMNS = (
    "history_encounters",
    "history_days_in_hospital",
    "history_inpatient",
    "history_emergency",
    "history_outpatient",
    "previous_time_in_hospital",
    "previous_num_medications",
    "previous_number_diagnoses",
    "previous_encounter_gap",
)
HISTORY_CATEGORICAL_COLUMNS = ("previous_discharge_disposition_id",)
HISTORY_COLUMNS = (*HISTORY_NUMERIC_COLUMNS, *HISTORY_CATEGORICAL_COLUMNS)
# Every numeric model input (the file's counts and the history's): numeric in the encoder and drift.
MODEL_NUMERIC_COLUMNS = (*NUMERIC_COLUMNS, *HISTORY_NUMERIC_COLUMNS)

# A scoring file must carry these; every other feature may be absent and is then scored as missing.
# They are the administrative fields every encounter record has; lab results, payer, specialty,
# secondary diagnoses and the medication flags are often absent from other producers' extracts.
REQUIRED_SCORING_COLUMNS = (
    ID_COLUMN,
    "gender",
    "age",
    "admission_type_id",
    "discharge_disposition_id",
    "admission_source_id",
    "time_in_hospital",
    "num_lab_procedures",
    "num_procedures",
    "num_medications",
    "number_outpatient",
    "number_emergency",
    "number_inpatient",
    "diag_1",
    "number_diagnoses",
)
OPTIONAL_SCORING_COLUMNS = tuple(c for c in FEATURE_COLUMNS if c not in REQUIRED_SCORING_COLUMNS)
# Training also needs the patient (for the grouped split) and the outcome.
REQUIRED_TRAINING_COLUMNS = (*REQUIRED_SCORING_COLUMNS, GROUP_COLUMN, TARGET_COLUMN)


def column_order_without_target() -> list[str]:
    """The header-less scoring order when a producer leaves the outcome out (49 columns)."""
    return [c for c in COLUMNS if c != TARGET_COLUMN]


def as_json_dict() -> dict[str, object]:
    """The content of `dataset_schema.json` (the contract in docs/architecture.md)."""
    return {
        "version": SCHEMA_VERSION,
        "id_column": ID_COLUMN,
        "group_column": GROUP_COLUMN,
        "target_column": TARGET_COLUMN,
        "missing_marker": MISSING_MARKER,
        "columns": list(COLUMNS),
        "required_training_columns": list(REQUIRED_TRAINING_COLUMNS),
        "required_scoring_columns": list(REQUIRED_SCORING_COLUMNS),
        "optional_scoring_columns": list(OPTIONAL_SCORING_COLUMNS),
        "numeric_columns": list(NUMERIC_COLUMNS),
        "categorical_columns": list(CATEGORICAL_COLUMNS),
        "target_values": list(TARGET_VALUES),
        "positive_target_values": {target: list(values) for target, values in POSITIVE_TARGET_VALUES.items()},
        "excluded_discharge_dispositions": list(EXCLUDED_DISCHARGE_DISPOSITIONS),
        "targets_excluding_death_or_hospice": list(TARGETS_EXCLUDING_DEATH_OR_HOSPICE),
        # The held-out minimums (see MIN_HELD_OUT_ROWS); a dataset needs each divided by the run's
        # validation_fraction (minimum_dataset), which the Lambda computes alike.
        "minimum_evaluation": {
            "held_out_rows": MIN_HELD_OUT_ROWS,
            "held_out_per_class": MIN_HELD_OUT_PER_CLASS,
        },
    }
