"""Compiled tree scoring: the same probabilities as scikit-learn, or scikit-learn's own path."""

import joblib
import numpy as np
import pytest

from pipelines.inference import read_scoring_file
from pipelines.training_pipeline import TrainingPipeline
from pipelines.tree_scoring import PipelineScorer, compile_pipeline, probe_matrix


@pytest.fixture(scope="module")
def pipeline(trained):
    return joblib.load(f"{trained.model_dir}/model.joblib")


@pytest.fixture(scope="module")
def frame(slice_csv):
    return read_scoring_file(str(slice_csv))


def test_compiled_trees_give_scikit_learns_probabilities_bit_for_bit(pipeline, frame):
    scorer = PipelineScorer(pipeline)
    assert scorer.compiled is not None
    assert np.array_equal(scorer.positive_probability(frame), pipeline.predict_proba(frame)[:, 1])


def test_unknown_missing_and_invalid_codes_score_like_scikit_learn(pipeline, frame):
    compiled = compile_pipeline(pipeline)
    model = pipeline.named_steps["model"]
    columns = len(pipeline.named_steps["encode"].feature_names_)
    probe = probe_matrix(compiled, columns, seed=11)
    # The probe mixes every threshold and its neighbours, codes -1..k+1 and NaN in every column.
    assert np.isnan(probe).any() and (probe < 0).any()
    assert np.array_equal(compiled.predict_proba(probe), model.predict_proba(probe))


def test_rows_beyond_one_block_keep_their_order(pipeline, frame, monkeypatch):
    import pipelines.tree_scoring as tree_scoring

    expected = PipelineScorer(pipeline).positive_probability(frame)
    monkeypatch.setattr(tree_scoring, "BLOCK_ROWS", 333)
    assert np.array_equal(PipelineScorer(pipeline).positive_probability(frame), expected)


def test_other_algorithms_keep_scikit_learns_path(slice_csv, frame, tmp_path):
    TrainingPipeline({"algorithm": "RandomForest", "n_estimators": 5}).execute(
        str(slice_csv), str(tmp_path), make_report=False
    )
    forest = joblib.load(tmp_path / "model.joblib")
    scorer = PipelineScorer(forest)
    assert scorer.compiled is None
    # The forest averages its trees in parallel: equal up to summation order.
    np.testing.assert_allclose(
        scorer.positive_probability(frame), forest.predict_proba(frame)[:, 1], rtol=0, atol=1e-12
    )


def test_a_model_the_compiler_cannot_reproduce_is_not_compiled(pipeline, monkeypatch):
    import pipelines.tree_scoring as tree_scoring

    # A compiler bug (here: every leaf value shifted) must fall back, never score wrongly.
    original = tree_scoring._compile

    def skewed(*args, **kwargs):
        compiled = original(*args, **kwargs)
        compiled.baseline += 0.01
        return compiled

    monkeypatch.setattr(tree_scoring, "_compile", skewed)
    assert compile_pipeline(pipeline) is None


def test_scoring_hands_back_the_prepared_features_it_computed(pipeline, frame, slice_csv, tmp_path):
    probability, prepared = PipelineScorer(pipeline).probability_and_features(frame)
    assert np.array_equal(probability, pipeline.predict_proba(frame)[:, 1])
    expected = pipeline.named_steps["features"].transform(frame)
    assert prepared.features.equals(expected)
    assert np.array_equal(prepared.encoded, pipeline[:-1].transform(frame), equal_nan=True)
    assert prepared.encoder is pipeline.named_steps["encode"]

    for algorithm, options in (("RandomForest", {"n_estimators": 5}), ("LogisticRegression", {})):
        TrainingPipeline({"algorithm": algorithm, **options}).execute(
            str(slice_csv), str(tmp_path / algorithm), make_report=False
        )
        other = joblib.load(tmp_path / algorithm / "model.joblib")
        probability, prepared = PipelineScorer(other).probability_and_features(frame)
        np.testing.assert_allclose(probability, other.predict_proba(frame)[:, 1], rtol=0, atol=1e-12)
        assert prepared.features.equals(expected)
        # The forest reads the encoder's matrix itself; the regression scales and one-hot encodes it.
        assert (prepared.encoded is not None) is (algorithm == "RandomForest")
