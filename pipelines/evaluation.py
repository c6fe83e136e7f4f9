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
