"""The model report: ROC, precision-recall, calibration and feature-importance PNGs plus report.md.

Kept cheap (a few thousand held-out rows for permutation importance) because it runs inside the
training job after the model is saved; it is not part of the training-time figure.
"""

import os
from typing import Any, Callable, Optional

import numpy as np
import pandas as pd

IMPORTANCE_ROWS = 3000
IMPORTANCE_REPEATS = 2
TOP_FEATURES = 15


def _figure(width: float, height: float) -> Any:
    """A figure drawn by the Agg canvas directly: no pyplot (its state machine and backend
    resolution are import time and bookkeeping a training container that only writes PNGs does
    not need), nothing to close afterwards."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def permutation_importances(
    model: Any, frame: pd.DataFrame, y: np.ndarray, seed: int, scorer: Optional[Any] = None
) -> list[dict[str, Any]]:
    """Mean drop of ROC AUC when one raw feature column is shuffled, on a subsample of held-out rows.

    scikit-learn's `permutation_importance(model, sample, y, scoring="roc_auc", n_repeats=...,
    random_state=seed)`, number for number, without its cost: it re-runs the whole pipeline (feature
    preparation, encoding, every tree) on 3,000 rows for each of 70 shuffles. Here the rows are
    prepared and encoded once: both steps work column by column and row by row, so shuffling a raw
    column's rows and encoding equals encoding and shuffling that column of the matrix. The shuffles
    are scikit-learn's (the same seeds, applied cumulatively per repeat) and all shuffled matrices
    are scored in one call, through the compiled trees when `scorer` (a PipelineScorer) has them.
    Pipelines of another shape keep scikit-learn's own function.
    """
    columns = list(model.named_steps["features"].feature_names_)
    rng = np.random.RandomState(seed)
    rows = rng.permutation(len(frame))[:IMPORTANCE_ROWS]
    sample = frame.iloc[rows][columns].reset_index(drop=True)
    target = y[rows]
    if len(np.unique(target)) < 2:
        return []
    decision = _encoded_decision(model, scorer)
    if decision is None:
        means, stds = _sklearn_importances(model, sample, target, seed)
    else:
        encoded_columns = list(model.named_steps["encode"].feature_names_)
        matrix = np.asarray(model[:2].transform(sample), dtype=float)
        # scikit-learn draws one seed from random_state, then every column starts a fresh
        # RandomState(seed) and shuffles its index in place once per repeat.
        column_seed = np.random.RandomState(seed).randint(np.iinfo(np.int32).max + 1)
        shuffle_rng = np.random.RandomState(column_seed)
        index, order = np.arange(len(sample)), []
        for _ in range(IMPORTANCE_REPEATS):
            shuffle_rng.shuffle(index)
            order.append(index.copy())
        used = [c for c in columns if c in encoded_columns]
        blocks = [matrix]
        for column in used:
            j = encoded_columns.index(column)
            values = matrix[:, j]
            for shuffled in order:
                values = values[shuffled]  # cumulative, as scikit-learn permutes its permuted copy
                block = matrix.copy()
                block[:, j] = values
                blocks.append(block)
        auc = ranked_auc(target, decision(np.vstack(blocks)).reshape(len(blocks), len(sample)))
        repeats = len(order)
        drops = {
            column: auc[0] - auc[1 + k * repeats : 1 + (k + 1) * repeats] for k, column in enumerate(used)
        }
        zero = np.zeros(len(order))  # a column the model does not read: shuffling it changes nothing
        means = [float(np.mean(drops.get(c, zero))) for c in columns]
        stds = [float(np.std(drops.get(c, zero))) for c in columns]
    ranked = sorted(zip(columns, means, stds), key=lambda r: -r[1])
    return [{"feature": c, "importance": float(m), "std": float(s)} for c, m, s in ranked]


def ranked_auc(y: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """ROC AUC of each row of `scores` against the 0/1 labels `y`, all rows at once.

    The Mann-Whitney form (mean rank of the positives, ties sharing their average rank) is the
    area roc_auc_score integrates, equal to it up to float rounding (1e-15), without its
    per-call validation (3 ms each, 71 calls per report).
    """
    from scipy.stats import rankdata

    positive = np.asarray(y) == 1
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    ranks = rankdata(np.atleast_2d(scores), axis=1)
    return (ranks[:, positive].sum(axis=1) - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)


def _encoded_decision(model: Any, scorer: Optional[Any]) -> Optional[Callable[[np.ndarray], np.ndarray]]:
    """What scikit-learn's `roc_auc` scorer ranks rows by, as a function of the encoded matrix
    (decision_function where the model has one, else the positive class probability); None when
    the pipeline is not features -> encode -> ... (then only scikit-learn's function applies)."""
    names = [name for name, _step in model.steps]
    if names[:2] != ["features", "encode"] or len(names) < 3:
        return None
    compiled = getattr(scorer, "compiled", None)
    if compiled is not None and getattr(scorer, "pipeline", None) is model and len(names) == 3:
        return compiled.raw_predict  # scikit-learn's decision_function, bit for bit
    tail = model[2:]
    if hasattr(tail, "decision_function"):
        return lambda matrix: np.asarray(tail.decision_function(matrix)).ravel()
    return lambda matrix: tail.predict_proba(matrix)[:, 1]


def _sklearn_importances(model: Any, sample: pd.DataFrame, target: np.ndarray, seed: int) -> Any:
    from sklearn.inspection import permutation_importance

    result = permutation_importance(
        model, sample, target, scoring="roc_auc", n_repeats=IMPORTANCE_REPEATS, random_state=seed, n_jobs=1
    )
    return [float(v) for v in result.importances_mean], [float(v) for v in result.importances_std]


def write_report(
    report_dir: str,
    model: Any,
    metrics: dict[str, Any],
    frame: pd.DataFrame,
    y: np.ndarray,
    probability: np.ndarray,
    seed: int,
    scorer: Optional[Any] = None,
) -> dict[str, str]:
    """Write the PNGs and report.md into `report_dir`; returns the written paths by name.

    `scorer`: the model's PipelineScorer when the caller has one (its compiled trees make the
    permutation importances cheap; without it they are computed through scikit-learn)."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    os.makedirs(report_dir, exist_ok=True)
    paths: dict[str, str] = {}
    model_metrics = metrics["model"]

    fig = _figure(4.5, 4.5)
    ax = fig.subplots()
    fpr, tpr, _ = roc_curve(y, probability)
    ax.plot(fpr, tpr, label="model (AUC {:.3f})".format(model_metrics["roc_auc"]))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC, held-out patients")
    ax.legend(loc="lower right")
    paths["roc"] = _save(fig, report_dir, "roc_curve.png")

    fig = _figure(4.5, 4.5)
    ax = fig.subplots()
    precision, recall, _ = precision_recall_curve(y, probability)
    ax.plot(recall, precision, label="model (AP {:.3f})".format(model_metrics["pr_auc"]))
    ax.axhline(float(np.mean(y)), linestyle="--", color="grey", label="prevalence")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall, held-out patients")
    ax.legend(loc="upper right")
    paths["pr"] = _save(fig, report_dir, "precision_recall_curve.png")

    fig = _figure(4.5, 4.5)
    ax = fig.subplots()
    bins = model_metrics["calibration"]
    ax.plot(
        [b["mean_predicted"] for b in bins], [b["observed_rate"] for b in bins], marker="o", label="model"
    )
    top = max([b["mean_predicted"] for b in bins] + [b["observed_rate"] for b in bins] + [0.1])
    ax.plot([0, top], [0, top], linestyle="--", color="grey", label="perfect")
    ax.set(xlabel="mean predicted probability", ylabel="observed readmission rate", title="Calibration")
    ax.legend(loc="upper left")
    paths["calibration"] = _save(fig, report_dir, "calibration_curve.png")

    importances = permutation_importances(model, frame, y, seed, scorer)
    fig = _figure(6, 5)
    ax = fig.subplots()
    shown = importances[:TOP_FEATURES][::-1]
    ax.barh([r["feature"] for r in shown], [r["importance"] for r in shown], xerr=[r["std"] for r in shown])
    ax.set(xlabel="ROC AUC drop when shuffled", title="Top feature importances (permutation)")
    fig.tight_layout()
    paths["importance"] = _save(fig, report_dir, "feature_importance.png")

    lines = [
        "# Model report: {} ({})".format(metrics["algorithm"], metrics["target"]),
        "",
        "Held-out patients: {} encounters of {} patients (never seen in training).".format(
            metrics["rows"]["validation"], metrics["patients"]["validation"]
        ),
        "",
        "| metric | model | champion |",
        "|---|---|---|",
    ]
    champion = metrics.get("champion") or {}
    for name in ("roc_auc", "pr_auc", "log_loss", "brier", "positive_rate", "threshold"):
        lines.append(
            "| {} | {:.4f} | {} |".format(
                name, model_metrics[name], f"{champion[name]:.4f}" if name in champion else "-"
            )
        )
    c = model_metrics["confusion"]
    lines += [
        "",
        "Confusion at threshold {:.4f}: TP {} FP {} TN {} FN {}.".format(
            model_metrics["threshold"], c["tp"], c["fp"], c["tn"], c["fn"]
        ),
    ]
    lines += comparison_lines(metrics.get("comparison"))
    if metrics.get("champion_error"):
        lines += ["", "Champion not scored: {}".format(metrics["champion_error"])]
    lines += [
        "",
        "![ROC curve](roc_curve.png)",
        "![Precision-recall curve](precision_recall_curve.png)",
        "![Calibration curve](calibration_curve.png)",
        "![Feature importance](feature_importance.png)",
        "",
        "| feature | importance (AUC drop) |",
        "|---|---|",
    ]
    lines += ["| {} | {:.4f} |".format(r["feature"], r["importance"]) for r in importances[:TOP_FEATURES]]
    paths["report"] = os.path.join(report_dir, "report.md")
    with open(paths["report"], "w") as handle:
        handle.write("\n".join(lines) + "\n")
    return paths


def comparison_lines(comparison: Optional[dict[str, Any]]) -> list[str]:
    """The report's account of the paired comparison the promotion gate decides on (none without a
    champion scored on the same rows)."""
    if not comparison:
        return []
    low, high = comparison["interval"]
    return [
        "",
        "| comparison with the champion (same rows) | value |",
        "|---|---|",
        "| ROC AUC difference (model - champion) | {:+.4f} |".format(comparison["roc_auc_difference"]),
        "| {:.0%} interval (DeLong) | [{:+.4f}, {:+.4f}] |".format(comparison["confidence"], low, high),
        "| standard error | {:.4f} |".format(comparison["standard_error"]),
        "| p-value (two-sided, difference = 0) | {:.3g} |".format(comparison["p_value"]),
        "| rows (readmitted) | {} ({}) |".format(comparison["rows"], comparison["positives"]),
        "",
        "The gate promotes the model only when the interval's lower end is above -MAX_AUC_DROP (0 by "
        "the recommended setting: the model must be shown better than the champion on these rows).",
    ]


def _save(fig: Any, report_dir: str, name: str) -> str:
    path = os.path.join(report_dir, name)
    fig.savefig(path, dpi=80)
    return path
