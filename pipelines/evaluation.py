"""Held-out evaluation: patient-grouped split, metrics, decision threshold, calibration bins."""

from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

CALIBRATION_BINS = 10


def patient_split(groups: np.ndarray, validation_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (training, validation): whole patients go to one side, chosen by a seeded draw.

    A patient's encounters share outcomes; splitting rows would let the model meet the same patient
    on both sides and overstate every metric.
    """
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be between 0 and 1, got {validation_fraction}")
    unique, inverse = np.unique(np.asarray(groups), return_inverse=True)
    rng = np.random.RandomState(seed)
    held_out = rng.permutation(len(unique))[: max(1, round(validation_fraction * len(unique)))]
    is_validation_patient = np.zeros(len(unique), dtype=bool)
    is_validation_patient[held_out] = True
    validation = is_validation_patient[inverse]
    return ~validation, validation


def choose_threshold(y_true: np.ndarray, probability: np.ndarray) -> float:
    """The probability cut that maximises F1 on the given (training) rows.

    Readmissions are ~11% of encounters: 0.5 would flag almost nobody. F1 balances recall of
    readmissions against the follow-up calls wasted on false alarms. Chosen on training rows so the
    held-out metrics stay honest.
    """
    order = np.argsort(-probability, kind="mergesort")
    sorted_p = probability[order]
    sorted_y = np.asarray(y_true)[order]
    true_positives = np.cumsum(sorted_y)
    predicted_positives = np.arange(1, len(sorted_y) + 1)
    positives = max(int(sorted_y.sum()), 1)
    f1 = 2 * true_positives / (predicted_positives + positives)
    # Only cut where the probability changes, so ties fall on one side.
    distinct = np.r_[sorted_p[1:] != sorted_p[:-1], True]
    best = int(np.argmax(np.where(distinct, f1, -1.0)))
    return float(sorted_p[best])


def calibration_bins(
    y_true: np.ndarray, probability: np.ndarray, bins: int = CALIBRATION_BINS
) -> list[dict[str, Any]]:
    """Equal-width probability bins: mean prediction vs observed rate (empty bins left out)."""
    index = np.minimum((probability * bins).astype(int), bins - 1)
    rows = []
    for b in range(bins):
        selected = index == b
        count = int(selected.sum())
        if count:
            rows.append(
                {
                    "bin": b,
                    "mean_predicted": float(probability[selected].mean()),
                    "observed_rate": float(np.asarray(y_true)[selected].mean()),
                    "count": count,
                }
            )
    return rows


def evaluate(y_true: np.ndarray, probability: np.ndarray, threshold: float) -> dict[str, Any]:
    """The `model`/`champion` block of metrics.json (docs/architecture.md)."""
    y = np.asarray(y_true).astype(int)
    p = np.clip(np.asarray(probability, dtype=float), 1e-7, 1 - 1e-7)
    predicted = p >= threshold
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "log_loss": float(log_loss(y, p, labels=[0, 1])),
        "brier": float(brier_score_loss(y, p)),
        "positive_rate": float(predicted.mean()),
        "threshold": float(threshold),
        "confusion": {
            "tp": int(np.sum(predicted & (y == 1))),
            "fp": int(np.sum(predicted & (y == 0))),
            "tn": int(np.sum(~predicted & (y == 0))),
            "fn": int(np.sum(~predicted & (y == 1))),
        },
        "calibration": calibration_bins(y, p),
    }


# Two-sided 95%: the interval's lower end is a one-sided test at 2.5% that the challenger is better.
COMPARISON_CONFIDENCE = 0.95
COMPARISON_METHOD = "delong_paired"


def _midrank_placements(
    positive_scores: np.ndarray, negative_scores: np.ndarray
) -> "tuple[np.ndarray, np.ndarray]":
    """DeLong's structural components for one model, from three rankings (Sun and Xu 2014).

    V10[i] is the share of negatives a positive i outranks (ties count half), V01[j] the share of
    positives that outrank negative j. Their means are the ROC AUC; their spread gives its variance
    without the O(positives x negatives) pair table.
    """
    from scipy.stats import rankdata

    m, n = len(positive_scores), len(negative_scores)
    combined = rankdata(np.concatenate([positive_scores, negative_scores]))
    within_positive = rankdata(positive_scores)
    within_negative = rankdata(negative_scores)
    v10 = (combined[:m] - within_positive) / n
    v01 = 1.0 - (combined[m:] - within_negative) / m
    return v10, v01


def compare_roc_auc(
    y_true: np.ndarray,
    challenger: np.ndarray,
    champion: np.ndarray,
    confidence: float = COMPARISON_CONFIDENCE,
) -> "dict[str, Any]":
    """DeLong's test of challenger - champion ROC AUC on the same rows, with its confidence interval.

    Why DeLong: both models score the same held-out encounters, so their AUCs are correlated; the
    paired variance (DeLong, DeLong and Clarke-Pearson 1988) accounts for that and for the number of
    positives and negatives, in O(n log n) and without randomness (neither scipy nor scikit-learn
    ships it; scipy's rankdata and normal distribution are the only pieces used). The gate
    (functions/evaluate_model.py) reads `interval`: an identical retrain gives a difference of 0 with
    an interval of [0, 0], a small evaluation gives a wide interval.
    """
    from scipy.stats import norm

    y = np.asarray(y_true).astype(int)
    positive = y == 1
    if positive.all() or not positive.any():
        raise ValueError("the comparison needs both outcomes among the rows")
    scores = [np.asarray(challenger, dtype=float), np.asarray(champion, dtype=float)]
    placements = [_midrank_placements(s[positive], s[~positive]) for s in scores]
    aucs = np.array([v10.mean() for v10, _ in placements])
    v10 = np.vstack([p[0] for p in placements])
    v01 = np.vstack([p[1] for p in placements])
    m, n = v10.shape[1], v01.shape[1]
    covariance = np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n
    difference = float(aucs[0] - aucs[1])
    variance = float(covariance[0, 0] + covariance[1, 1] - 2 * covariance[0, 1])
    standard_error = float(np.sqrt(max(variance, 0.0)))
    z = float(norm.ppf(0.5 + confidence / 2))
    if standard_error > 0:
        p_value = float(2 * norm.sf(abs(difference) / standard_error))
    else:  # the two rankings agree on every positive-negative pair: no evidence either way
        p_value = 1.0 if difference == 0 else 0.0
    return {
        "method": COMPARISON_METHOD,
        "roc_auc_difference": difference,
        "standard_error": standard_error,
        "confidence": float(confidence),
        "interval": [difference - z * standard_error, difference + z * standard_error],
        "p_value": p_value,
        "rows": len(y),
        "positives": int(positive.sum()),
    }
