"""Drift: baseline statistics at training time, population stability index (PSI) at scoring time.

Training stores each feature's distribution (`baseline_statistics.json`); scoring compares a batch
with it. Numeric features use the baseline's quantile bins, categorical ones the baseline's
categories plus "other"; missing values are a bucket of their own in both, because a producer
that stops sending a field is drift too. Also the processing-job entry point:

    python3 drift.py --model DIR_OR_model.tar.gz --data DIR_OR_FILE --output DIR
"""

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, Optional

import numpy as np
import pandas as pd

from pipelines import schema
from pipelines.features import category_codes

BASELINE_VERSION = 1
WARN_PSI = 0.1
DRIFT_PSI = 0.25
NUMERIC_BINS = 10
MAX_BASELINE_CATEGORIES = 30
# Floor for empty buckets: PSI's log ratio is undefined at 0.
_EPSILON = 1e-4
PREDICTION_KEY = "probability"


def numeric_baseline(values: np.ndarray) -> dict[str, Any]:
    """Quantile bin edges and the share of rows in each bin (+ missing) for one numeric series."""
    values = np.asarray(values, dtype=float)
    present = values[~np.isnan(values)]
    edges: list[float] = []
    if len(present):
        quantiles = np.quantile(present, np.linspace(0, 1, NUMERIC_BINS + 1)[1:-1])
        edges = sorted({float(q) for q in quantiles})
    baseline = {"type": "numeric", "edges": edges}
    baseline["proportions"] = numeric_distribution(values, edges)
    baseline["mean"] = float(present.mean()) if len(present) else None
    baseline["std"] = float(present.std()) if len(present) else None
    return baseline


def numeric_distribution(values: np.ndarray, edges: Sequence[float]) -> list[float]:
    """Shares of rows per bin (right-closed: (-inf, e1], (e1, e2], ..., (ek, inf)) then missing."""
    values = np.asarray(values, dtype=float)
    missing = np.isnan(values)
    index = np.searchsorted(np.asarray(edges, dtype=float), values[~missing], side="left")
    counts = np.bincount(index, minlength=len(edges) + 1).astype(float)
    counts = np.append(counts, missing.sum())
    return list((counts / max(len(values), 1)).tolist())


def categorical_baseline(values: Sequence[object]) -> dict[str, Any]:
    """The most frequent categories and shares of rows per category, then "other", then missing."""
    series = pd.Series(np.asarray(values, dtype=object))
    categories = [str(c) for c in series.value_counts(dropna=True).index[:MAX_BASELINE_CATEGORIES]]
    return {
        "type": "categorical",
        "categories": categories,
        "proportions": categorical_distribution(series, categories),
    }


def categorical_distribution(values: Sequence[object], categories: Sequence[str]) -> list[float]:
    """Shares of rows per baseline category, then "other" (unseen values), then missing."""
    series = pd.Series(np.asarray(values, dtype=object))
    codes = category_codes(series.to_numpy(), categories)
    missing = series.isna().to_numpy()
    counts = np.bincount(codes[codes >= 0], minlength=len(categories)).astype(float)
    other = float(np.sum((codes < 0) & ~missing))
    counts = np.append(counts, [other, float(missing.sum())])
    return list((counts / max(len(series), 1)).tolist())


def compute_baseline(features: pd.DataFrame, probability: Optional[np.ndarray] = None) -> dict[str, Any]:
    """`baseline_statistics.json` for a feature frame (the model's prepared features)."""
    stats: dict[str, Any] = {}
    for column in features.columns:
        if column in schema.NUMERIC_COLUMNS:
            stats[column] = numeric_baseline(pd.to_numeric(features[column], errors="coerce").to_numpy())
        else:
            stats[column] = categorical_baseline(features[column].to_numpy())
    baseline: dict[str, Any] = {"version": BASELINE_VERSION, "rows": len(features), "features": stats}
    if probability is not None:
        baseline["prediction"] = numeric_baseline(np.asarray(probability, dtype=float))
    return baseline


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Population stability index between two bucket-share vectors of the same buckets."""
    e = np.maximum(np.asarray(expected, dtype=float), _EPSILON)
    a = np.maximum(np.asarray(actual, dtype=float), _EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def level(value: float) -> str:
    """`ok` below 0.1, `warn` below 0.25, `drift` from 0.25 (the usual PSI reading)."""
    return "drift" if value >= DRIFT_PSI else ("warn" if value >= WARN_PSI else "ok")


def _feature_psi(baseline: dict[str, Any], values: np.ndarray) -> float:
    if baseline["type"] == "numeric":
        actual = numeric_distribution(
            pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(), baseline["edges"]
        )
    else:
        actual = categorical_distribution(values, baseline["categories"])
    return psi(baseline["proportions"], actual)


def drift_report(
    baseline: dict[str, Any], features: pd.DataFrame, probability: Optional[np.ndarray] = None
) -> dict[str, Any]:
    """Per-feature PSI of a scored batch against the baseline, with the overall flag."""
    per_feature = {}
    for column, stats in baseline["features"].items():
        if column not in features.columns:
            continue
        value = _feature_psi(stats, features[column].to_numpy())
        per_feature[column] = {"psi": round(value, 6), "level": level(value)}
    report: dict[str, Any] = {
        "rows": len(features),
        "baseline_rows": int(baseline.get("rows", 0)),
        "thresholds": {"warn": WARN_PSI, "drift": DRIFT_PSI},
        "features": per_feature,
    }
    if probability is not None and "prediction" in baseline:
        value = _feature_psi(baseline["prediction"], np.asarray(probability, dtype=float))
        report["prediction"] = {"psi": round(value, 6), "level": level(value)}
    drifted = sorted(c for c, r in per_feature.items() if r["level"] == "drift")
    warned = sorted(c for c, r in per_feature.items() if r["level"] == "warn")
    report["drifted_features"] = drifted
    report["warned_features"] = warned
    report["max_psi"] = max([r["psi"] for r in per_feature.values()] or [0.0])
    report["drift"] = bool(drifted)
    report["status"] = "drift" if drifted else ("warn" if warned else "ok")
    return report


def report_markdown(report: dict[str, Any]) -> str:
    """A short human summary of a drift report, worst features first."""
    lines = [
        "# Drift report",
        "",
        "Status: **{}** ({} scored rows against {} baseline rows; PSI warn >= {}, drift >= {}).".format(
            report["status"], report["rows"], report["baseline_rows"], WARN_PSI, DRIFT_PSI
        ),
        "",
        "| feature | PSI | level |",
        "|---|---|---|",
    ]
    ranked = sorted(report["features"].items(), key=lambda item: -item[1]["psi"])
    lines += ["| {} | {:.4f} | {} |".format(name, r["psi"], r["level"]) for name, r in ranked]
    if "prediction" in report:
        lines += [
            "",
            "Predicted probability PSI: {:.4f} ({}).".format(
                report["prediction"]["psi"], report["prediction"]["level"]
            ),
        ]
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], output_dir: str) -> dict[str, str]:
    """Write `drift_report.json` and `drift_report.md`; returns their paths."""
    os.makedirs(output_dir, exist_ok=True)
    paths = {
        "json": os.path.join(output_dir, "drift_report.json"),
        "markdown": os.path.join(output_dir, "drift_report.md"),
    }
    with open(paths["json"], "w") as handle:
        json.dump(report, handle, indent=2, sort_keys=True)
    with open(paths["markdown"], "w") as handle:
        handle.write(report_markdown(report))
    return paths


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Processing-job entry point: score the data with the model, compare with its baseline."""
    from pipelines.data import DatasetError, list_data_files
    from pipelines.inference import load_model_dir, read_scoring_file, score

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", required=True, help="model.tar.gz, a directory holding it, or an extracted model"
    )
    parser.add_argument("--data", required=True, help="a scored CSV (or .csv.gz) or a directory of them")
    parser.add_argument("--output", required=True, help="directory for drift_report.json / .md")
    args = parser.parse_args(argv)
    try:
        bundle = load_model_dir(args.model)
        frames = [read_scoring_file(path) for path in list_data_files(args.data)]
        frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True, sort=False)
        features = bundle.model.named_steps["features"].transform(frame)
        probability = score(bundle, frame)["probability"].to_numpy()
        report = drift_report(bundle.baseline, features, probability)
    except (DatasetError, ValueError, OSError) as exc:
        print(f"drift failed: {exc}", file=sys.stderr)
        return 1
    write_report(report, args.output)
    print(
        "drift status={} max_psi={:.4f} drifted={}".format(
            report["status"], report["max_psi"], ",".join(report["drifted_features"]) or "-"
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
