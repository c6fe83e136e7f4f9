"""The model report: ROC, precision-recall, calibration and feature-importance PNGs plus report.md.

Kept cheap (a few thousand held-out rows for permutation importance) because it runs inside the
training job after the model is saved; it is not part of the training-time figure.
"""

import os
from typing import Any

import numpy as np
import pandas as pd

IMPORTANCE_ROWS = 3000
IMPORTANCE_REPEATS = 2
TOP_FEATURES = 15


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")  # no display in a training container
    import matplotlib.pyplot as plt

    return plt


def permutation_importances(
    model: Any, frame: pd.DataFrame, y: np.ndarray, seed: int
) -> list[dict[str, Any]]:
    """Mean drop of ROC AUC when one raw feature column is shuffled, on a subsample of held-out rows."""
    from sklearn.inspection import permutation_importance

    columns = list(model.named_steps["features"].feature_names_)
    rng = np.random.RandomState(seed)
    rows = rng.permutation(len(frame))[:IMPORTANCE_ROWS]
    sample = frame.iloc[rows][columns].reset_index(drop=True)
    if len(np.unique(y[rows])) < 2:
        return []
    result = permutation_importance(
        model, sample, y[rows], scoring="roc_auc", n_repeats=IMPORTANCE_REPEATS, random_state=seed, n_jobs=1
    )
    ranked = sorted(zip(columns, result.importances_mean, result.importances_std), key=lambda r: -r[1])
    return [{"feature": c, "importance": float(m), "std": float(s)} for c, m, s in ranked]


def write_report(
    report_dir: str,
    model: Any,
    metrics: dict[str, Any],
    frame: pd.DataFrame,
    y: np.ndarray,
    probability: np.ndarray,
    seed: int,
) -> dict[str, str]:
    """Write the PNGs and report.md into `report_dir`; returns the written paths by name."""
    from sklearn.metrics import precision_recall_curve, roc_curve

    plt = _pyplot()
    os.makedirs(report_dir, exist_ok=True)
    paths: dict[str, str] = {}
    model_metrics = metrics["model"]

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    fpr, tpr, _ = roc_curve(y, probability)
    ax.plot(fpr, tpr, label="model (AUC {:.3f})".format(model_metrics["roc_auc"]))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC, held-out patients")
    ax.legend(loc="lower right")
    paths["roc"] = _save(fig, plt, report_dir, "roc_curve.png")

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    precision, recall, _ = precision_recall_curve(y, probability)
    ax.plot(recall, precision, label="model (AP {:.3f})".format(model_metrics["pr_auc"]))
    ax.axhline(float(np.mean(y)), linestyle="--", color="grey", label="prevalence")
    ax.set(xlabel="recall", ylabel="precision", title="Precision-recall, held-out patients")
    ax.legend(loc="upper right")
    paths["pr"] = _save(fig, plt, report_dir, "precision_recall_curve.png")

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    bins = model_metrics["calibration"]
    ax.plot(
        [b["mean_predicted"] for b in bins], [b["observed_rate"] for b in bins], marker="o", label="model"
    )
    top = max([b["mean_predicted"] for b in bins] + [b["observed_rate"] for b in bins] + [0.1])
    ax.plot([0, top], [0, top], linestyle="--", color="grey", label="perfect")
    ax.set(xlabel="mean predicted probability", ylabel="observed readmission rate", title="Calibration")
    ax.legend(loc="upper left")
    paths["calibration"] = _save(fig, plt, report_dir, "calibration_curve.png")

    importances = permutation_importances(model, frame, y, seed)
    fig, ax = plt.subplots(figsize=(6, 5))
    shown = importances[:TOP_FEATURES][::-1]
    ax.barh([r["feature"] for r in shown], [r["importance"] for r in shown], xerr=[r["std"] for r in shown])
    ax.set(xlabel="ROC AUC drop when shuffled", title="Top feature importances (permutation)")
    fig.tight_layout()
    paths["importance"] = _save(fig, plt, report_dir, "feature_importance.png")

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


def _save(fig: Any, plt: Any, report_dir: str, name: str) -> str:
    path = os.path.join(report_dir, name)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
