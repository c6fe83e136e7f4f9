"""Drift: baseline statistics at training time, population stability index (PSI) at scoring time.

Training stores each feature's distribution (`baseline_statistics.json`); scoring compares a batch
with it. Numeric features use the baseline's quantile bins, categorical ones the baseline's
categories plus "other"; missing values are a bucket of their own in both, because a producer
that stops sending a field is drift too.

The processing job (`main`) never re-scores: the prediction PSI comes from the batch transform's
output, the feature PSI from the scored data through the model's `features` step. Both are streamed:
chunks of rows are counted into the baseline's fixed buckets (`DriftCounts`), the counts add up, and
the PSI is computed once from the totals, so memory does not grow with the file and count sets of
shards merge (`merge_counts`) into the report one pass over everything would give:

    python3 drift.py --model DIR_OR_model.tar.gz --data DIR_OR_FILE --predictions DIR_OR_FILE --output DIR
"""

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
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


def numeric_counts(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Rows per bin (right-closed: (-inf, e1], (e1, e2], ..., (ek, inf)) then missing, as int64."""
    values = np.asarray(values, dtype=float)
    missing = np.isnan(values)
    index = np.searchsorted(np.asarray(edges, dtype=float), values[~missing], side="left")
    counts = np.bincount(index, minlength=len(edges) + 1).astype(np.int64)
    return np.append(counts, np.int64(missing.sum()))


def numeric_distribution(values: np.ndarray, edges: Sequence[float]) -> list[float]:
    """Shares of rows per bin (right-closed: (-inf, e1], (e1, e2], ..., (ek, inf)) then missing."""
    counts = numeric_counts(values, edges).astype(float)
    return list((counts / max(len(np.asarray(values)), 1)).tolist())


def categorical_baseline(values: Sequence[object]) -> dict[str, Any]:
    """The most frequent categories and shares of rows per category, then "other", then missing."""
    series = pd.Series(np.asarray(values, dtype=object), dtype=object)
    categories = [str(c) for c in series.value_counts(dropna=True).index[:MAX_BASELINE_CATEGORIES]]
    return {
        "type": "categorical",
        "categories": categories,
        "proportions": categorical_distribution(series, categories),
    }


def categorical_counts(values: Sequence[object], categories: Sequence[str]) -> np.ndarray:
    """Rows per baseline category, then "other" (unseen values), then missing, as int64."""
    array = np.asarray(values, dtype=object)
    codes = category_codes(array, categories)
    unmatched = codes < 0
    # Only the values outside the baseline's categories can be missing: test those alone (a
    # missing test over every object value costs more than the category lookup).
    missing = np.int64(pd.isna(array[unmatched]).sum())
    counts = np.bincount(codes[~unmatched], minlength=len(categories)).astype(np.int64)
    return np.append(counts, [np.int64(unmatched.sum()) - missing, missing])


def categorical_distribution(values: Sequence[object], categories: Sequence[str]) -> list[float]:
    """Shares of rows per baseline category, then "other" (unseen values), then missing."""
    series = pd.Series(np.asarray(values, dtype=object), dtype=object)
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
        if column in schema.MODEL_NUMERIC_COLUMNS:
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
        per_feature[column] = _feature_psi(stats, features[column].to_numpy())
    prediction = None
    if probability is not None and "prediction" in baseline:
        prediction = _feature_psi(baseline["prediction"], np.asarray(probability, dtype=float))
    return _report(baseline, len(features), per_feature, prediction)


def _report(
    baseline: Mapping[str, Any], rows: int, per_feature_psi: Mapping[str, float], prediction: Optional[float]
) -> dict[str, Any]:
    """The drift report from PSI values: one shape whether they came from a frame or from counts."""
    per_feature = {c: {"psi": round(v, 6), "level": level(v)} for c, v in per_feature_psi.items()}
    report: dict[str, Any] = {
        "rows": rows,
        "baseline_rows": int(baseline.get("rows", 0)),
        "thresholds": {"warn": WARN_PSI, "drift": DRIFT_PSI},
        "features": per_feature,
    }
    if prediction is not None:
        report["prediction"] = {"psi": round(prediction, 6), "level": level(prediction)}
    drifted = sorted(c for c, r in per_feature.items() if r["level"] == "drift")
    warned = sorted(c for c, r in per_feature.items() if r["level"] == "warn")
    report["drifted_features"] = drifted
    report["warned_features"] = warned
    report["max_psi"] = max([r["psi"] for r in per_feature.values()] or [0.0])
    report["drift"] = bool(drifted)
    report["status"] = "drift" if drifted else ("warn" if warned else "ok")
    return report


class DriftCounts:
    """Rows per baseline bucket, per feature and for the predicted probability: PSI's sufficient
    statistics. The buckets are the baseline's (fixed quantile edges, fixed categories), so counts of
    any split of the rows add up to the counts of all of them (`merge_counts`), chunk after chunk in
    one process or shard by shard across processing instances; `to_json`/`from_json` carry a shard's
    counts to the process that merges them.
    """

    def __init__(
        self,
        rows: int = 0,
        features: Optional[Mapping[str, np.ndarray]] = None,
        prediction_rows: int = 0,
        prediction: Optional[np.ndarray] = None,
    ) -> None:
        self.rows = int(rows)
        self.features: dict[str, np.ndarray] = {
            k: np.asarray(v, dtype=np.int64) for k, v in (features or {}).items()
        }
        self.prediction_rows = int(prediction_rows)
        self.prediction = None if prediction is None else np.asarray(prediction, dtype=np.int64)

    def to_json(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "features": {k: v.tolist() for k, v in self.features.items()},
            "prediction_rows": self.prediction_rows,
            "prediction": None if self.prediction is None else self.prediction.tolist(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "DriftCounts":
        return cls(data["rows"], data["features"], data["prediction_rows"], data.get("prediction"))


def _bucket_counts(stats: Mapping[str, Any], values: Any) -> np.ndarray:
    """One feature's bucket counts, the buckets `_feature_psi` compares (same coercions)."""
    if stats["type"] == "numeric":
        series = pd.Series(values)
        numbers = (
            pd.to_numeric(series, errors="coerce").to_numpy(dtype=float)
            if series.dtype == object
            else series.to_numpy(dtype=float)
        )
        return numeric_counts(numbers, stats["edges"])
    return categorical_counts(values, stats["categories"])


def count_features(
    baseline: Mapping[str, Any], features: pd.DataFrame, encoding: Optional[tuple[np.ndarray, Any]] = None
) -> DriftCounts:
    """Bucket counts of a prepared feature frame (the model's `features` step output).

    `encoding`: the (matrix, TabularEncoder) scoring computed from these same features. A
    categorical column's counts then come from the encoder's codes, one lookup per category
    instead of one per row; only rows the encoder left uncoded (missing, unseen or too rare for
    it) are looked up against the baseline's categories. The counts are the same either way.
    """
    counts = {}
    for column, stats in baseline["features"].items():
        if column not in features.columns:
            continue
        values = features[column].to_numpy()
        coded = _encoder_codes(encoding, column) if stats["type"] == "categorical" else None
        if coded is None:
            counts[column] = _bucket_counts(stats, values)
        else:
            counts[column] = _counts_from_codes(stats["categories"], values, *coded)
    return DriftCounts(rows=len(features), features=counts)


def _encoder_codes(
    encoding: Optional[tuple[np.ndarray, Any]], column: str
) -> Optional[tuple[np.ndarray, list]]:
    """The encoder's codes for `column` and the categories they index, when it encoded it."""
    if encoding is None:
        return None
    matrix, encoder = encoding
    categorical = list(getattr(encoder, "categorical_", ()))
    categories = getattr(encoder, "categories_", {})
    if column not in categorical or column not in categories:
        return None
    return matrix[:, len(encoder.numeric_) + categorical.index(column)], list(categories[column])


def _counts_from_codes(
    categories: Sequence[str], values: np.ndarray, codes: np.ndarray, encoder_categories: Sequence[str]
) -> np.ndarray:
    """`categorical_counts(values, categories)` from encoder codes (code k = encoder_categories[k])."""
    with np.errstate(invalid="ignore"):
        known = (codes >= 0) & (codes < len(encoder_categories))  # NaN (or a missing_value) is not
    per_code = np.bincount(codes[known].astype(np.intp), minlength=len(encoder_categories))
    position = {c: i for i, c in enumerate(categories)}
    other = len(categories)
    bucket = np.array([position.get(c, other) for c in encoder_categories], dtype=np.intp)
    counts = np.bincount(bucket, weights=per_code, minlength=len(categories) + 2).astype(np.int64)
    return counts + categorical_counts(values[~known], categories)


def count_predictions(baseline: Mapping[str, Any], probability: np.ndarray) -> DriftCounts:
    """Bucket counts of predicted probabilities (nothing counted when the baseline has none)."""
    if "prediction" not in baseline:
        return DriftCounts()
    probability = np.asarray(probability, dtype=float)
    return DriftCounts(
        prediction_rows=len(probability),
        prediction=numeric_counts(probability, baseline["prediction"]["edges"]),
    )


def _add(a: Optional[np.ndarray], b: Optional[np.ndarray], what: str) -> Optional[np.ndarray]:
    if a is None or b is None:
        return b if a is None else a
    if a.shape != b.shape:
        raise ValueError(f"{what}: {len(a)} vs {len(b)} buckets (counts of different baselines)")
    return a + b


def merge_counts(a: DriftCounts, b: DriftCounts) -> DriftCounts:
    """The counts of the union of the rows `a` and `b` counted (against the same baseline)."""
    features = {}
    for column in list(a.features) + [c for c in b.features if c not in a.features]:
        features[column] = _add(a.features.get(column), b.features.get(column), column)
    return DriftCounts(
        a.rows + b.rows,
        features,
        a.prediction_rows + b.prediction_rows,
        _add(a.prediction, b.prediction, "prediction"),
    )


def counts_report(baseline: Mapping[str, Any], counts: DriftCounts) -> dict[str, Any]:
    """`drift_report` from bucket counts: the same report the whole frame would give."""
    per_feature = {}
    for column, stats in baseline["features"].items():
        if column not in counts.features:
            continue
        per_feature[column] = psi(stats["proportions"], counts.features[column] / max(counts.rows, 1))
    prediction = None
    if counts.prediction is not None and "prediction" in baseline:
        actual = counts.prediction / max(counts.prediction_rows, 1)
        prediction = psi(baseline["prediction"]["proportions"], actual)
    return _report(baseline, counts.rows, per_feature, prediction)


# ---- streaming the processing job's inputs ---------------------------------------------------

PREDICTION_COLUMNS = ("encounter_id", "probability", "prediction", "not_scored_reason")
PREDICTION_SUFFIX = ".out"


def scoring_chunks(path: str, keep: Optional[Sequence[str]], chunk_rows: int) -> Iterator[pd.DataFrame]:
    """One scoring file (CSV or gzip, BOM, CRLF, `?`; header or schema order) in frames of at most
    `chunk_rows` rows: `read_scoring_file`'s sniffing, then the chunked reader of pipelines/data.py."""
    from pipelines.data import read_frame_chunks
    from pipelines.inference import sniff_scoring_file

    name, compression, layout = sniff_scoring_file(path)
    return read_frame_chunks(
        path,
        layout["columns"],
        name,
        compression=compression,
        header=layout["header"],
        keep=keep,
        chunk_rows=chunk_rows,
    )


def prediction_files(path: str) -> list[str]:
    """The transform's output files under a prefix: its `*.out` files (every file when none is)."""
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise FileNotFoundError(f"no predictions at {path}")
    found = sorted(
        os.path.join(root, name)
        for root, _dirs, files in os.walk(path)
        for name in files
        if not name.startswith(".")
    )
    return [f for f in found if f.endswith(PREDICTION_SUFFIX)] or found


def probability_chunks(path: str, chunk_rows: int) -> Iterator[np.ndarray]:
    """The probability column of one transform output file, chunk by chunk, scored rows only.

    Lines are `encounter_id,probability,prediction,not_scored_reason`; a line equal to that header is
    skipped wherever it is (each mini-batch's response may carry one, so an assembled file can hold
    several or none), and so is a row not scored (empty probability, a reason): the drift of the
    predictions is that of the rows the model scored. A file of the earlier three-column shape reads
    alike (every row scored).
    """
    from pipelines.data import DatasetError

    name = os.path.basename(path)
    if os.path.getsize(path) == 0:
        return
    reader = pd.read_csv(
        path,
        header=None,
        names=list(PREDICTION_COLUMNS[: _prediction_fields(path)]),
        dtype=object,
        keep_default_na=False,
        encoding="utf-8-sig",
        chunksize=chunk_rows,
    )
    offset = 0
    try:
        with contextlib.closing(reader):  # pandas < 1.2: TextFileReader is no context manager
            for chunk in reader:
                text = chunk.to_numpy()
                header = (
                    (text[:, 0] == PREDICTION_COLUMNS[0])
                    & (text[:, 1] == PREDICTION_COLUMNS[1])
                    & (text[:, 2] == PREDICTION_COLUMNS[2])
                )
                reason = (
                    chunk[PREDICTION_COLUMNS[3]].fillna("").to_numpy(dtype=object)
                    if PREDICTION_COLUMNS[3] in chunk.columns
                    else np.full(len(chunk), "", dtype=object)
                )
                not_scored = ~header & (chunk["probability"].to_numpy(dtype=object) == "") & (reason != "")
                rows = ~header & ~not_scored
                values = pd.to_numeric(chunk["probability"][rows], errors="coerce").to_numpy(dtype=float)
                bad = np.isnan(values)
                if bad.any():
                    line = offset + int(np.flatnonzero(rows)[np.flatnonzero(bad)[0]]) + 1
                    raise DatasetError(
                        "malformed_predictions",
                        f"{name} line {line}: no probability and no not_scored_reason "
                        f"(expected {','.join(PREDICTION_COLUMNS)})",
                    )
                offset += len(chunk)
                yield values
    except pd.errors.ParserError as exc:
        raise DatasetError("malformed_predictions", f"{name} is not well-formed CSV: {exc}") from exc


def _prediction_fields(path: str) -> int:
    """3 for a file of the earlier `encounter_id,probability,prediction` shape, else 4: pandas 1.x
    refuses more names than a file has fields, so the reader is told which shape it reads."""
    import csv

    with open(path, newline="", encoding="utf-8-sig") as handle:
        first = next(csv.reader(handle), [])
    return 3 if len(first) == 3 else len(PREDICTION_COLUMNS)


def stream_counts(
    baseline: Mapping[str, Any],
    prepare: Any,
    data_path: str,
    predictions_path: str,
    keep: Optional[Sequence[str]] = None,
    chunk_rows: int = 50_000,
    target: str = schema.DEFAULT_TARGET,
) -> DriftCounts:
    """Counts of every scored row of `data_path` (files or a directory of parts) through the
    `features` step `prepare`, and of every probability under `predictions_path`, one chunk at a time.

    The rows `target` excludes (death or hospice, `pipelines.data.excluded_rows`) are left out, as
    the transform left them unscored and the training baseline never counted them: on the model's own
    training file the report then compares like with like."""
    from pipelines.data import excluded_rows, list_data_files

    counts = DriftCounts()
    for path in list_data_files(data_path):
        for chunk in scoring_chunks(path, keep, chunk_rows):
            excluded = excluded_rows(chunk, target)
            if excluded.all():
                continue
            rows = chunk[~excluded] if excluded.any() else chunk
            features = prepare.transform(rows)
            # History columns exist only in parts the EnrichHistory job wrote (the ASL passes those);
            # data without them says nothing about the history's drift: left out, not counted as missing.
            absent = [c for c in schema.HISTORY_COLUMNS if c in features.columns and c not in rows.columns]
            if absent:
                features = features.drop(columns=absent)
            counts = merge_counts(counts, count_features(baseline, features))
    return merge_counts(counts, _count_probabilities(baseline, predictions_path, chunk_rows))


def _count_probabilities(baseline: Mapping[str, Any], predictions_path: str, chunk_rows: int) -> DriftCounts:
    if "prediction" not in baseline:
        return DriftCounts()
    # From an explicit zero count: a prefix of empty files still reports (an empty) prediction PSI.
    edges = baseline["prediction"]["edges"]
    counts = DriftCounts(prediction=np.zeros(len(edges) + 2, dtype=np.int64))
    for path in prediction_files(predictions_path):
        for values in probability_chunks(path, chunk_rows):
            counts = merge_counts(counts, count_predictions(baseline, values))
    return counts


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


COUNTS_FILE = "drift_counts.json"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Processing-job entry point: the scored data's features and the transform's probabilities,
    streamed into the baseline's buckets; the report (and the counts, for a merge) to --output."""
    from pipelines.data import DatasetError
    from pipelines.inference import load_model_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", required=True, help="model.tar.gz, a directory holding it, or an extracted model"
    )
    parser.add_argument("--data", required=True, help="the scored CSV (or .csv.gz) or a directory of parts")
    parser.add_argument(
        "--predictions", required=True, help="the batch transform's output: <input name>.out files"
    )
    parser.add_argument("--output", required=True, help="directory for drift_report.json / .md")
    parser.add_argument("--chunk-rows", type=int, default=50_000, help="rows held in memory at a time")
    args = parser.parse_args(argv)
    try:
        bundle = load_model_dir(args.model)
        if bundle.baseline is None:
            raise ValueError(f"{args.model} has no baseline_statistics.json")
        counts = stream_counts(
            bundle.baseline,
            bundle.model.named_steps["features"],
            args.data,
            args.predictions,
            keep=bundle.input_columns,
            chunk_rows=args.chunk_rows,
            target=bundle.target,
        )
        report = counts_report(bundle.baseline, counts)
    except (DatasetError, ValueError, OSError) as exc:
        print(f"drift failed: {exc}", file=sys.stderr)
        return 1
    if "prediction" in bundle.baseline and counts.prediction_rows != counts.rows:
        print(
            f"WARNING: {counts.prediction_rows} predictions for {counts.rows} data rows "
            "(the predictions are not the transform of this data)",
            file=sys.stderr,
        )
    write_report(report, args.output)
    with open(os.path.join(args.output, COUNTS_FILE), "w") as handle:
        json.dump(counts.to_json(), handle)
    print(
        "drift status={} rows={} max_psi={:.4f} drifted={}".format(
            report["status"], report["rows"], report["max_psi"], ",".join(report["drifted_features"]) or "-"
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
