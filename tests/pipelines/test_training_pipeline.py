"""TrainingPipeline: the Python API, patient-grouped evaluation, exclusions, artifacts, champion."""

import csv
import io
import os
import tarfile
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from pipelines import schema
from pipelines.data import DatasetError
from pipelines.estimators import ConfigError
from pipelines.evaluation import choose_threshold, patient_split
from pipelines.training_pipeline import TrainingPipeline, excluded_rows, make_target
from tests.pipelines.pipeline_cases import read_json

ID_MAPPING = Path(__file__).resolve().parents[2] / "data" / "IDs_mapping.csv"
ARTIFACTS = (
    "model.joblib",
    "features.json",
    "baseline_statistics.json",
    "metrics.json",
    "patient_history.csv.gz",
    "patient_history.json",
)


def test_default_pipeline_trains_and_writes_every_artifact(trained):
    assert trained.status == "succeeded"
    for name in ARTIFACTS:
        assert os.path.exists(os.path.join(trained.model_dir, name)), name
    metrics = read_json(f"{trained.model_dir}/metrics.json")
    assert metrics["algorithm"] == "HistGradientBoosting"
    assert metrics["target"] == "readmitted_30d"
    assert metrics["champion"] is None
    for key in (
        "roc_auc",
        "pr_auc",
        "log_loss",
        "brier",
        "positive_rate",
        "threshold",
        "confusion",
        "calibration",
    ):
        assert key in metrics["model"]
    assert 0.5 < metrics["model"]["roc_auc"] < 1.0
    confusion = metrics["model"]["confusion"]
    assert sum(confusion.values()) == metrics["rows"]["validation"]
    assert sum(b["count"] for b in metrics["model"]["calibration"]) == metrics["rows"]["validation"]
    assert metrics["versions"]["scikit-learn"]


def test_model_file_is_one_pipeline_that_scores_raw_rows_with_its_threshold(trained, slice_frame):
    model = joblib.load(f"{trained.model_dir}/model.joblib")
    assert type(model).__name__ == "Pipeline"
    raw = pd.read_csv(
        io.StringIO(slice_frame.head(50).to_csv(index=False)),
        dtype=str,
        keep_default_na=False,
        na_values=["?"],
    )
    for column in schema.NUMERIC_COLUMNS:
        raw[column] = raw[column].astype(float)
    probability = model.predict_proba(raw)[:, 1]
    assert probability.shape == (50,)
    assert 0.0 < model.decision_threshold_ < 1.0


def test_the_reference_configuration_random_forest_with_100_trees_works(slice_csv, tmp_path):
    result = TrainingPipeline({"algorithm": "RandomForest", "n_estimators": 100}).execute(
        str(slice_csv), str(tmp_path), make_report=False
    )
    assert result.status == "succeeded"
    assert result.metrics["algorithm"] == "RandomForest"
    assert result.metrics["parameters"]["n_estimators"] == 100
    assert result.metrics["model"]["roc_auc"] > 0.5


def test_logistic_regression_trains(slice_csv, tmp_path):
    result = TrainingPipeline({"algorithm": "LogisticRegression"}).execute(
        str(slice_csv), str(tmp_path), make_report=False
    )
    assert result.metrics["model"]["roc_auc"] > 0.5


def test_same_seed_gives_identical_metrics(slice_csv, tmp_path):
    first = TrainingPipeline({"max_iter": 30, "seed": 7}).execute(
        str(slice_csv), str(tmp_path / "a"), make_report=False
    )
    second = TrainingPipeline({"max_iter": 30, "seed": 7}).execute(
        str(slice_csv), str(tmp_path / "b"), make_report=False
    )
    assert first.metrics["model"] == second.metrics["model"]


def test_patient_split_puts_each_patient_on_one_side_only(slice_frame):
    groups = slice_frame[schema.GROUP_COLUMN].to_numpy()
    train, validation = patient_split(groups, 0.2, seed=42)
    assert not set(groups[train]) & set(groups[validation])
    assert (train ^ validation).all()
    share = validation.mean()
    assert 0.1 < share < 0.3
    again_train, _ = patient_split(groups, 0.2, seed=42)
    assert (again_train == train).all()


def test_repeat_patients_never_straddle_the_split():
    groups = np.repeat(np.arange(50), 4)  # every patient has four encounters
    train, _validation = patient_split(groups, 0.3, seed=1)
    for patient in range(50):
        sides = set(train[groups == patient])
        assert len(sides) == 1


def discharge_dispositions(word: str) -> set:
    """The discharge_disposition_id codes whose description in the dataset's own ID mapping
    (data/IDs_mapping.csv, the UCI release's) contains `word` (case-sensitive: "Expired", "Hospice")."""
    codes = set()
    in_section = False
    with open(ID_MAPPING, newline="") as handle:
        for row in csv.reader(handle):
            if row and row[0] == "discharge_disposition_id":
                in_section = True
            elif in_section and (not row or not row[0]):
                break  # the blank line that ends the section
            elif in_section and word in row[1]:
                codes.add(int(row[0]))
    return codes


def test_the_excluded_dispositions_are_the_id_mappings_expired_and_hospice_codes():
    expired = discharge_dispositions("Expired")
    hospice = discharge_dispositions("Hospice")

    assert expired == {11, 19, 20, 21} and hospice == {13, 14}  # the mapping read as intended
    assert set(schema.EXPIRED_DISCHARGE_DISPOSITIONS) == expired
    assert set(schema.HOSPICE_DISCHARGE_DISPOSITIONS) == hospice - expired
    assert set(schema.EXCLUDED_DISCHARGE_DISPOSITIONS) == expired | hospice


def test_death_and_hospice_encounters_are_excluded_for_the_30_day_target(trained, slice_frame):
    codes = slice_frame[schema.DISCHARGE_COLUMN].astype(int)
    # From the mapping, not from the constant under test.
    expected = int(codes.isin(discharge_dispositions("Expired") | discharge_dispositions("Hospice")).sum())
    assert expected > 0
    assert trained.metrics["rows"]["excluded_death_or_hospice"] == expected
    rows = trained.metrics["rows"]
    assert rows["training"] + rows["validation"] == len(slice_frame) - expected


def test_any_readmission_target_keeps_every_encounter(slice_frame):
    assert not excluded_rows(slice_frame, "readmitted_any").any()
    target = make_target(slice_frame, "readmitted_any")
    assert target.sum() == int((slice_frame["readmitted"] != "NO").sum())
    assert make_target(slice_frame, "readmitted_30d").sum() == int((slice_frame["readmitted"] == "<30").sum())


def test_threshold_maximises_f1_on_the_given_rows():
    y = np.array([0, 0, 1, 1, 0, 1])
    p = np.array([0.1, 0.2, 0.8, 0.7, 0.6, 0.65])
    assert choose_threshold(y, p) == pytest.approx(0.65)


def test_failed_run_leaves_the_previous_artifacts_untouched(trained, tmp_path, raw_lines):
    import shutil

    from tests.pipelines.pipeline_cases import make_bad_case

    model_dir = tmp_path / "model"
    shutil.copytree(trained.model_dir, model_dir)
    before = {name: (model_dir / name).read_bytes() for name in ARTIFACTS}
    channel = tmp_path / "bad"
    make_bad_case("single_class", channel, raw_lines)
    with pytest.raises(DatasetError):
        TrainingPipeline({}).execute(str(channel), str(model_dir), make_report=False)
    assert {name: (model_dir / name).read_bytes() for name in ARTIFACTS} == before
    assert sorted(p.name for p in model_dir.iterdir()) == sorted(ARTIFACTS)


@pytest.mark.parametrize(
    "config",
    [{"algorithm": "XGBoost"}, {"target": "mortality"}, {"seed": "abc"}, {"max_iter": "many"}],
)
def test_bad_configuration_is_a_named_error(config):
    with pytest.raises(ConfigError):
        TrainingPipeline(config)


def test_champion_is_scored_on_the_same_held_out_rows(trained, slice_csv, tmp_path):
    archive = tmp_path / "champion" / "model.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        for name in ARTIFACTS:
            tar.add(f"{trained.model_dir}/{name}", arcname=name)
    result = TrainingPipeline({"max_iter": 40}).execute(
        str(slice_csv), str(tmp_path / "new"), champion_path=str(archive.parent), make_report=False
    )
    champion = result.metrics["champion"]
    assert champion is not None
    assert set(champion) == set(result.metrics["model"])
    # Same data, same seed, same configuration: the champion is this very model.
    assert champion["roc_auc"] == pytest.approx(result.metrics["model"]["roc_auc"])
    assert "champion_error" not in result.metrics
    # The identical retrain's paired comparison: no difference, and an interval of [0, 0].
    comparison = result.metrics["comparison"]
    assert comparison["method"] == "delong_paired"
    assert comparison["roc_auc_difference"] == pytest.approx(0.0, abs=1e-12)
    assert comparison["interval"] == pytest.approx([0.0, 0.0], abs=1e-12)
    assert comparison["rows"] == result.metrics["rows"]["validation"]


def test_champion_that_cannot_be_loaded_is_recorded_not_fatal(slice_csv, tmp_path):
    broken = tmp_path / "champion"
    broken.mkdir()
    (broken / "model.tar.gz").write_bytes(b"this is not a tarball")
    result = TrainingPipeline({"max_iter": 20}).execute(
        str(slice_csv), str(tmp_path / "new"), champion_path=str(broken), make_report=False
    )
    assert "comparison" not in result.metrics
    assert result.status == "succeeded"
    assert result.metrics["champion"] is None
    assert result.metrics["champion_error"]
    saved = read_json(tmp_path / "new" / "metrics.json")
    assert saved["champion_error"] == result.metrics["champion_error"]


def test_baseline_statistics_describe_every_model_feature(trained):
    baseline = read_json(f"{trained.model_dir}/baseline_statistics.json")
    features = read_json(f"{trained.model_dir}/features.json")
    assert set(baseline["features"]) == set(features["columns"])
    for stats in baseline["features"].values():
        assert sum(stats["proportions"]) == pytest.approx(1.0)
    assert features["threshold"] == pytest.approx(trained.metrics["model"]["threshold"])


# ---- the report: cheap, and the same numbers as scikit-learn's -----------------------------------


def sklearn_permutation_importances(model, frame, y, seed):
    """scikit-learn's own permutation_importance on the rows the report samples, by feature."""
    from sklearn.inspection import permutation_importance

    from pipelines.report import IMPORTANCE_REPEATS, IMPORTANCE_ROWS

    columns = list(model.named_steps["features"].feature_names_)
    rows = np.random.RandomState(seed).permutation(len(frame))[:IMPORTANCE_ROWS]
    sample = frame.iloc[rows][columns].reset_index(drop=True)
    with threadpool_limits(limits=1):  # OpenMP on a shared box only waits for busy cores
        result = permutation_importance(
            model,
            sample,
            y[rows],
            scoring="roc_auc",
            n_repeats=IMPORTANCE_REPEATS,
            random_state=seed,
            n_jobs=1,
        )
    assert len(columns) == len(result.importances_mean) == len(result.importances_std)
    return {c: (m, s) for c, m, s in zip(columns, result.importances_mean, result.importances_std)}


@pytest.mark.parametrize(
    ("config", "tolerance"),
    [
        ({"max_iter": 30}, 1e-12),
        # The forest averages its trees in parallel threads: probabilities equal up to summation
        # order, so a tie between two rows can break either way from one call to the next (even
        # between two scikit-learn calls), moving an AUC by a few 1/(positives x negatives).
        ({"algorithm": "RandomForest", "n_estimators": 5}, 1e-5),
        ({"algorithm": "LogisticRegression"}, 1e-12),
    ],
    ids=["hist_gradient_boosting", "random_forest", "logistic_regression"],
)
def test_permutation_importances_are_scikit_learns_numbers(
    config, tolerance, slice_csv, slice_frame, tmp_path, monkeypatch
):
    import pipelines.report as report
    from pipelines.history import add_history
    from pipelines.inference import read_scoring_file
    from pipelines.report import permutation_importances
    from pipelines.tree_scoring import PipelineScorer

    monkeypatch.setattr(report, "IMPORTANCE_ROWS", 1000)  # scikit-learn's own function is the slow side

    TrainingPipeline(config).execute(str(slice_csv), str(tmp_path), make_report=False)
    model = joblib.load(tmp_path / "model.joblib")
    # The history columns as training computed them (the whole slice, no earlier data).
    frame = add_history(read_scoring_file(str(slice_csv)))
    y = make_target(slice_frame, "readmitted_30d").to_numpy()
    expected = sklearn_permutation_importances(model, frame, y, seed=3)

    for scorer in (PipelineScorer(model), None):
        found = permutation_importances(model, frame, y, 3, scorer)
        assert {r["feature"] for r in found} == set(expected)
        for row in found:
            mean, std = expected[row["feature"]]
            assert row["importance"] == pytest.approx(mean, abs=tolerance), row["feature"]
            assert row["std"] == pytest.approx(std, abs=tolerance), row["feature"]
    assert max(r["importance"] for r in found) > 0  # the check compared real signal, not zeros


def test_ranked_auc_is_roc_auc_score_for_every_row_ties_included():
    from sklearn.metrics import roc_auc_score

    from pipelines.report import ranked_auc

    rng = np.random.RandomState(0)
    y = rng.randint(2, size=500)
    scores = np.round(rng.normal(size=(4, 500)) + y, 1)  # rounded: many tied scores
    expected = [roc_auc_score(y, row) for row in scores]
    np.testing.assert_allclose(ranked_auc(y, scores), expected, rtol=0, atol=1e-12)


def test_training_with_its_report_writes_every_plot_and_the_importance_table(slice_csv, tmp_path):
    result = TrainingPipeline({"max_iter": 30}).execute(str(slice_csv), str(tmp_path / "model"))
    report_dir = tmp_path / "model" / "report"
    for name in ("roc_curve", "precision_recall_curve", "calibration_curve", "feature_importance"):
        assert (report_dir / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    report = (report_dir / "report.md").read_text()
    assert "| inpatient stays, prior year | `number_inpatient` |" in report
    assert "report" in result.timings
