"""The paired comparison the promotion gate decides on: DeLong's test of two ROC AUCs on the same rows."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from pipelines.evaluation import compare_roc_auc
from pipelines.report import comparison_lines


def scored_rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels at ~11% prevalence and two correlated scores, the second a little weaker, with ties."""
    rng = np.random.RandomState(seed)
    y = (rng.rand(n) < 0.11).astype(int)
    shared = rng.rand(n)
    challenger = np.round(0.6 * y + shared + 0.5 * rng.rand(n), 2)
    champion = np.round(0.5 * y + shared + 0.5 * rng.rand(n), 2)
    return y, challenger, champion


def pairwise_delong(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """DeLong 1988 from the full positive x negative table: the definition, O(m n)."""
    components = []
    for scores in (a, b):
        pos, neg = scores[y == 1], scores[y == 0]
        psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        components.append((psi.mean(axis=1), psi.mean(axis=0)))
    v10 = np.vstack([c[0] for c in components])
    v01 = np.vstack([c[1] for c in components])
    s = np.cov(v10) / v10.shape[1] + np.cov(v01) / v01.shape[1]
    return float(v10[0].mean() - v10[1].mean()), float(np.sqrt(s[0, 0] + s[1, 1] - 2 * s[0, 1]))


def test_the_difference_is_the_roc_auc_difference_and_the_error_is_delongs() -> None:
    y, a, b = scored_rows(600, seed=1)

    result = compare_roc_auc(y, a, b)

    difference, error = pairwise_delong(y, a, b)
    assert result["roc_auc_difference"] == pytest.approx(roc_auc_score(y, a) - roc_auc_score(y, b), abs=1e-12)
    assert result["roc_auc_difference"] == pytest.approx(difference, abs=1e-12)
    assert result["standard_error"] == pytest.approx(error, rel=1e-9)
    low, high = result["interval"]
    assert low == pytest.approx(difference - 1.959964 * error, abs=1e-6)
    assert high == pytest.approx(difference + 1.959964 * error, abs=1e-6)
    assert (result["rows"], result["positives"]) == (600, int(y.sum()))


def test_the_error_agrees_with_a_paired_bootstrap_of_the_same_rows() -> None:
    y, a, b = scored_rows(3000, seed=2)
    rng = np.random.RandomState(0)
    draws = []
    for _ in range(400):
        rows = rng.randint(0, len(y), len(y))
        draws.append(roc_auc_score(y[rows], a[rows]) - roc_auc_score(y[rows], b[rows]))

    result = compare_roc_auc(y, a, b)

    assert result["standard_error"] == pytest.approx(float(np.std(draws, ddof=1)), rel=0.15)


def test_an_identical_retrain_differs_by_nothing_with_an_interval_of_zero_width() -> None:
    y, a, _ = scored_rows(500, seed=3)

    result = compare_roc_auc(y, a, a.copy())

    assert result["roc_auc_difference"] == 0.0
    assert result["interval"] == [0.0, 0.0]
    assert result["p_value"] == 1.0


def test_a_larger_evaluation_gives_a_narrower_interval() -> None:
    small = compare_roc_auc(*scored_rows(400, seed=4))
    large = compare_roc_auc(*scored_rows(40_000, seed=4))

    def width(result: dict) -> float:
        return result["interval"][1] - result["interval"][0]

    assert width(large) < width(small) / 5


def test_a_clear_gain_on_many_rows_is_significant_and_none_on_few_is_not() -> None:
    many = compare_roc_auc(*scored_rows(40_000, seed=5))
    few = compare_roc_auc(*scored_rows(200, seed=5))

    assert many["interval"][0] > 0 and many["p_value"] < 0.05
    assert few["interval"][0] < 0 < few["interval"][1]


def test_rows_with_a_single_outcome_cannot_be_compared() -> None:
    with pytest.raises(ValueError, match="both outcomes"):
        compare_roc_auc(np.zeros(10), np.linspace(0, 1, 10), np.linspace(0, 1, 10))


def test_the_report_states_the_difference_interval_test_and_size() -> None:
    lines = comparison_lines(
        {
            "method": "delong_paired",
            "roc_auc_difference": 0.0123,
            "standard_error": 0.004,
            "confidence": 0.95,
            "interval": [0.0045, 0.0201],
            "p_value": 0.0021,
            "rows": 20000,
            "positives": 2200,
        }
    )

    text = "\n".join(lines)
    assert "| ROC AUC difference (model - champion) | +0.0123 |" in text
    assert "| 95% interval (DeLong) | [+0.0045, +0.0201] |" in text
    assert "| p-value (two-sided, difference = 0) | 0.0021 |" in text
    assert "| rows (readmitted) | 20000 (2200) |" in text
    assert comparison_lines(None) == []
