"""ValidateDataset: cheap checks on the run's dataset and score file before paying for compute.

Reads at most a sample of each file (the first MiB, decompressed when gzip), so a bad upload fails in
seconds with a message naming the problem (`InvalidDataset`) instead of minutes later inside a
training job. The rules come from `code/dataset_schema.json`, written by `python -m pipelines.bundle`
from `pipelines/schema.py`: this module knows no column names of its own.
"""

from __future__ import annotations

import csv
import io
import json
import struct
import zlib
from dataclasses import dataclass
from typing import Any

import aws_clients
from errors import InvalidDataset
from observability import Logger, Metrics, MetricUnit, instrument
from s3uri import S3Uri, is_missing_object, parse_s3_uri
from settings import Settings, load_settings

logger = Logger()
metrics = Metrics()

SAMPLE_BYTES = 1024 * 1024  # raw bytes fetched for the sample of an uncompressed file
SAMPLE_TEXT_BYTES = 4 * 1024 * 1024  # decompressed bytes examined at most
# The csv module refuses a field over 128 KiB by default; the training job (pandas) has no such limit,
# so a field may be as long as the sample (the line-length check below bounds the lines themselves).
csv.field_size_limit(max(csv.field_size_limit(), SAMPLE_TEXT_BYTES + 1))
FULL_GZIP_CHECK_BYTES = 64 * 1024 * 1024  # gzip files up to this size are read through (truncation)
LARGE_SAMPLE_ROWS = 100  # below this many sampled rows a single class is not evidence of a bad file
CHUNK = 256 * 1024
GZIP_MAGIC = b"\x1f\x8b"
# The BatchTransform state's MaxPayloadInMB (tests/statemachine keeps them equal): the transform cuts
# a score file by line into mini-batches of at most this many MiB, so a longer line cannot be scored.
TRANSFORM_MAX_PAYLOAD_MB = 6
# The header line goes to the transform container as its SCORING_COLUMNS Environment entry, whose
# value CreateTransformJob limits to this many characters (botocore's TransformEnvironmentValue).
ENVIRONMENT_VALUE_MAX = 10240
# A scoreUri ending in '/' is a prefix of parts: at most this many (each one's sample is read here).
MAX_SCORE_PARTS = 100

_schema_cache: dict[tuple[str, str], dict[str, Any]] = {}


def clear_schema_cache() -> None:
    _schema_cache.clear()


def load_schema(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    """dataset_schema.json, fetched once per container (it changes only with a deploy)."""
    cache_key = (bucket, key)
    if cache_key not in _schema_cache:
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except s3.exceptions.NoSuchKey:
            raise RuntimeError(f"s3://{bucket}/{key} is missing: deploy the code bundle first") from None
        _schema_cache[cache_key] = json.loads(body)
    return _schema_cache[cache_key]


@dataclass(frozen=True)
class Sample:
    """The start of a file as text, and whether it is the whole file."""

    raw_head: bytes
    data: bytes
    complete: bool
    compressed: bool


def _decompress_prefix(data: bytes, uri: S3Uri) -> bytes:
    """Decompress the start of a gzip stream (a prefix of the file is fine: no end-of-stream check).

    The message names the object: a run reads two files (the dataset and the score file), and the
    user must be told which one to upload again."""
    decoder = zlib.decompressobj(wbits=31)
    try:
        return decoder.decompress(data, SAMPLE_TEXT_BYTES)
    except zlib.error as exc:
        raise InvalidDataset(f"{uri} is not a readable gzip file ({exc})") from None


def _read_gzip_through(body: Any, uri: S3Uri) -> tuple[bytes, bool]:
    """Stream a whole gzip object, keeping the first SAMPLE_TEXT_BYTES; raise if it is truncated."""
    kept = bytearray()
    total = 0
    decoder = zlib.decompressobj(wbits=31)
    try:
        for chunk in body.iter_chunks(CHUNK):
            while chunk:
                out = decoder.decompress(chunk)
                total += len(out)
                if len(kept) < SAMPLE_TEXT_BYTES:
                    kept.extend(out[: SAMPLE_TEXT_BYTES - len(kept)])
                # A multi-member gzip (concatenated files) continues after the first member's end.
                chunk = decoder.unused_data if decoder.eof else b""
                if decoder.eof and chunk:
                    decoder = zlib.decompressobj(wbits=31)
        if not decoder.eof:
            raise InvalidDataset(
                f"{uri} is a truncated gzip file (the compressed stream ends before its end marker); "
                "upload it again"
            )
    except zlib.error as exc:
        raise InvalidDataset(f"{uri} is a corrupt gzip file ({exc})") from None
    return bytes(kept), total <= SAMPLE_TEXT_BYTES


def _check_gzip_trailer(s3: Any, uri: S3Uri, size: int) -> None:
    """For gzip files too large to read through: a plausibility check on the 8-byte trailer.

    ISIZE is the uncompressed size mod 2**32. CSV compresses well under 16x, so while 16 * size fits in
    32 bits a trailer claiming less data than the compressed size means the file was cut short.
    """
    tail = s3.get_object(Bucket=uri.bucket, Key=uri.key, Range=f"bytes={size - 8}-{size - 1}")["Body"].read()
    (isize,) = struct.unpack("<I", tail[4:8])
    if size * 16 < 2**32 and isize < size:
        raise InvalidDataset(f"{uri} looks like a truncated gzip file (its trailer is not a gzip trailer)")


def read_sample(s3: Any, uri: S3Uri, settings: Settings) -> Sample:
    """Fetch what the checks need: existence, size, and the first bytes of content."""
    try:
        head = s3.head_object(Bucket=uri.bucket, Key=uri.key)
    except s3.exceptions.ClientError as exc:
        if is_missing_object(exc):
            raise InvalidDataset(f"{uri} does not exist") from None
        raise
    size = int(head["ContentLength"])
    if size == 0:
        raise InvalidDataset(f"{uri} is empty (0 bytes)")
    if size > settings.max_dataset_bytes:
        raise InvalidDataset(
            f"{uri} is {size} bytes; the limit is {settings.max_dataset_bytes} bytes (MAX_DATASET_BYTES)"
        )
    head_bytes = s3.get_object(
        Bucket=uri.bucket, Key=uri.key, Range=f"bytes=0-{min(size, SAMPLE_BYTES) - 1}"
    )["Body"].read()
    if head_bytes[:2] != GZIP_MAGIC:
        if uri.key.endswith(".gz"):
            raise InvalidDataset(f"{uri} is named .gz but is not gzip-compressed")
        return Sample(head_bytes, head_bytes, size <= SAMPLE_BYTES, False)
    if size <= FULL_GZIP_CHECK_BYTES:
        body = s3.get_object(Bucket=uri.bucket, Key=uri.key)["Body"]
        data, complete = _read_gzip_through(body, uri)
        return Sample(head_bytes, data, complete, True)
    _check_gzip_trailer(s3, uri, size)
    return Sample(head_bytes, _decompress_prefix(head_bytes, uri), False, True)


def _rows(sample: Sample, uri: S3Uri) -> tuple[list[str], list[list[str]], list[int]]:
    """Header, data rows and each data row's line number (the physical line it starts on, 1 = the
    header, as an editor numbers them: blank lines count), refusing binary or non-UTF-8 content,
    other delimiters and blank lines before the header."""
    data = sample.data
    if b"\x00" in data[:8192] or (not sample.compressed and b"\x00" in sample.raw_head[:8192]):
        raise InvalidDataset(f"{uri} is binary, not a CSV text file")
    if not sample.complete:
        # Drop the partial last line of a sample cut mid-file.
        cut = data.rfind(b"\n")
        data = data[: cut + 1] if cut >= 0 else data
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidDataset(f"{uri} is not UTF-8 text (invalid byte at offset {exc.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    rows: list[list[str]] = []
    numbers: list[int] = []
    start = 1  # the physical line the next record starts on (a quoted field may span lines)
    try:
        for row in reader:
            # Blank: no text at all. After the header, a line of commas is a row of empty fields, as
            # the training job reads it (and refuses it for its missing ids), not a blank line.
            if any(c.strip() for c in row) or (rows and len(row) > 1):
                rows.append(row)
                numbers.append(start)
            start = reader.line_num + 1
    except csv.Error as exc:
        raise InvalidDataset(f"{uri} is not a CSV the pipeline can read (line {start}: {exc})") from None
    if not rows:
        raise InvalidDataset(f"{uri} has no header and no rows")
    if numbers[0] != 1:
        # The training job reads the column names from the first line (pipelines/data.py), blank or
        # not, so a file whose header comes after blank lines would pass here and fail in training.
        raise InvalidDataset(
            f"{uri} starts with a blank line; the header (the column names) must be line 1, "
            f"not line {numbers[0]}"
        )
    header = [h.strip() for h in rows[0]]
    if len(header) == 1:
        for delimiter, label in ((";", "';'"), ("\t", "a tab"), ("|", "'|'")):
            if delimiter in rows[0][0]:
                raise InvalidDataset(
                    f"{uri} uses {label} as delimiter; the pipeline reads comma-separated files"
                )
    return header, rows[1:], numbers[1:]


def check_table(
    sample: Sample,
    uri: S3Uri,
    schema: dict[str, Any],
    *,
    purpose: str,
    training_target: str | None = None,
    validation_fraction: float | None = None,
) -> dict[str, Any]:
    """Apply the schema's rules for `purpose` ('training' or 'scoring'); return a small summary.

    `training_target` is the run's hyperparameter `target`: when the sample is the whole file, a file in
    which every row, or no row, is positive for that target cannot train and is refused here, and so is
    a file too small to evaluate at the run's `validation_fraction` (see `_check_size`).
    """
    header, rows, line_numbers = _rows(sample, uri)
    _check_line_lengths(sample, uri)
    _check_columns(header, rows, uri, schema, purpose)
    positive_values = set((schema.get("positive_target_values") or {}).get(training_target or "", []))
    targets, positives = _check_rows(header, rows, line_numbers, uri, schema, purpose, positive_values)
    if purpose == "training":
        _check_classes(
            uri, schema, rows, targets, positives, positive_values, sample.complete, training_target
        )
        if sample.complete and positive_values:
            _check_size(
                uri, schema, header, rows, positive_values, training_target or "", validation_fraction
            )
    header_line = ",".join(header)
    if len(header_line) > ENVIRONMENT_VALUE_MAX:
        raise InvalidDataset(
            f"{uri} has a header line of {len(header_line)} characters; batch transform passes it to the "
            f"container as an Environment value, at most {ENVIRONMENT_VALUE_MAX}"
        )
    return {
        "uri": str(uri),
        "columns": len(header),
        "sampledRows": len(rows),
        "sampleIsWholeFile": sample.complete,
        "compressed": sample.compressed,
        # What BatchTransform reads: the header for SCORING_COLUMNS (later mini-batches of the file
        # are header-less) and the CompressionType, by content.
        "header": header_line,
        "compressionType": "Gzip" if sample.compressed else "None",
    }


def _check_line_lengths(sample: Sample, uri: S3Uri) -> None:
    """No line of the sample is longer than a transform mini-batch (MaxPayloadInMB): SplitType Line
    would fail that record after training was paid for. A sample cut mid-file counts its unfinished
    last line too (it is at least that long)."""
    limit = TRANSFORM_MAX_PAYLOAD_MB * 1024 * 1024
    # A binary stream's lines end at b"\n" only, as the transform splits them (a lone CR is in a line).
    for number, line in enumerate(io.BytesIO(sample.data), start=1):
        if len(line) > limit:
            unfinished = not sample.complete and not line.endswith(b"\n")
            raise InvalidDataset(
                f"{uri} line {number} is {'at least ' if unfinished else ''}{len(line)} bytes; batch "
                f"transform scores lines in mini-batches of at most {TRANSFORM_MAX_PAYLOAD_MB} MiB "
                "(MaxPayloadInMB), so it cannot score this line"
            )


def _check_columns(
    header: list[str], rows: list[list[str]], uri: S3Uri, schema: dict[str, Any], purpose: str
) -> None:
    """The target (for training) and every required column are in the header; enough rows."""
    target = schema["target_column"]
    if purpose == "training" and target not in header:
        raise InvalidDataset(f"{uri} has no target column '{target}' (header: {','.join(header[:8])}...)")
    missing = [c for c in schema[f"required_{purpose}_columns"] if c not in header]
    if missing:
        raise InvalidDataset(f"{uri} lacks required {purpose} columns: {', '.join(missing)}")
    minimum = 2 if purpose == "training" else 1
    if len(rows) < minimum:
        raise InvalidDataset(
            f"{uri} has {len(rows)} data row{'s' if len(rows) != 1 else ''}; "
            f"at least {minimum} needed for {purpose}"
        )


def _check_rows(
    header: list[str],
    rows: list[list[str]],
    line_numbers: list[int],
    uri: S3Uri,
    schema: dict[str, Any],
    purpose: str,
    positive_values: set[str],
) -> tuple[set[str], int]:
    """Every row: its field count, numeric columns, a unique encounter id and (for training) its
    encounter and patient ids and a known target value. Returns the target values seen and how many
    rows are positive. `line_numbers` are the rows' physical lines, what the messages name."""
    target, id_column = schema["target_column"], schema["id_column"]
    index = {name: i for i, name in enumerate(header)}
    marker = schema.get("missing_marker", "?")
    numeric = [c for c in schema["numeric_columns"] if c in index]
    allowed_targets = set(schema["target_values"])
    # The training job refuses a missing encounter or patient id (pipelines/data.py); the lines are
    # named here, before the job is paid for.
    required_ids = [c for c in (id_column, schema.get("group_column")) if c in index]
    seen_ids: dict[str, int] = {}
    targets: set[str] = set()
    positives = 0
    for n, row in zip(line_numbers, rows, strict=True):
        if len(row) != len(header):
            raise InvalidDataset(f"{uri} line {n} has {len(row)} fields; the header has {len(header)}")
        for column in numeric:
            value = row[index[column]].strip()
            if value in ("", marker):
                continue
            try:
                float(value)
            except ValueError:
                raise InvalidDataset(
                    f"{uri} column '{column}' must be numeric; line {n} has {value[:40]!r}"
                ) from None
        if purpose == "training":
            for column in required_ids:
                if row[index[column]].strip() in ("", marker):
                    raise InvalidDataset(
                        f"{uri} line {n} has no {column} (empty or {marker!r}); training needs it on "
                        "every row"
                    )
        if id_column in index:
            encounter = row[index[id_column]].strip()
            if encounter in seen_ids:
                raise InvalidDataset(
                    f"{uri} repeats {id_column} {encounter} (lines {seen_ids[encounter]} and {n})"
                )
            seen_ids[encounter] = n
        if purpose == "training":
            value = row[index[target]].strip()
            if value not in allowed_targets:
                raise InvalidDataset(
                    f"{uri} column '{target}' has unknown value {value!r} on line {n}; "
                    f"expected one of {sorted(allowed_targets)}"
                )
            targets.add(value)
            positives += value in positive_values
    return targets, positives


def _check_classes(
    uri: S3Uri,
    schema: dict[str, Any],
    rows: list[list[str]],
    targets: set[str],
    positives: int,
    positive_values: set[str],
    complete: bool,
    training_target: str | None,
) -> None:
    """A training file must hold both outcomes: refused when a large sample has one target value, or
    when the whole file has no (or only) positive rows for the run's target."""
    target = schema["target_column"]
    if len(rows) >= LARGE_SAMPLE_ROWS and len(targets) < 2:
        raise InvalidDataset(
            f"{uri} has a single class: all {len(rows)} sampled rows have {target}={next(iter(targets))!r}"
        )
    if positive_values and complete and positives in (0, len(rows)):
        raise InvalidDataset(
            f"{uri} has a single class for target {training_target}: {'all' if positives else 'none'} of "
            f"its {len(rows)} rows have {target} in {sorted(positive_values)}; training needs both outcomes"
        )


def _check_size(
    uri: S3Uri,
    schema: dict[str, Any],
    header: list[str],
    rows: list[list[str]],
    positive_values: set[str],
    training_target: str,
    validation_fraction: float | None,
) -> None:
    """A whole file (a complete sample) smaller than the training job's minimum is refused here, before
    a training job is paid for: the same numbers as pipelines/schema.py (`minimum_evaluation`, held-out
    rows and rows of each outcome, divided by the run's validation_fraction: `minimum_dataset`), on the
    rows the target uses (death/hospice encounters left out for the 30-day target, as training does).

    Without a validation_fraction the training job's largest (0.5) is assumed: the smallest dataset
    that could pass, so nothing is refused here that training might accept.
    """
    minimum = schema.get("minimum_evaluation")
    if not minimum:  # a code bundle from before the minimums: the training job still checks
        return
    try:
        fraction = float(validation_fraction) if validation_fraction not in (None, "") else 0.5
    except ValueError:
        return  # the training job refuses the hyperparameter itself, with its own message
    if not 0 < fraction <= 1:
        return

    def need(held_out: int) -> int:
        return int(-(-round(held_out / fraction, 6) // 1))

    rows_needed, per_class_needed = need(minimum["held_out_rows"]), need(minimum["held_out_per_class"])
    target_index = header.index(schema["target_column"])
    excluded_codes = {str(code) for code in schema.get("excluded_discharge_dispositions", [])}
    excludes = training_target in schema.get("targets_excluding_death_or_hospice", [])
    discharge = header.index("discharge_disposition_id") if "discharge_disposition_id" in header else None
    usable = positives = 0
    for row in rows:
        if excludes and discharge is not None and _code(row[discharge]) in excluded_codes:
            continue
        usable += 1
        positives += row[target_index].strip() in positive_values
    negatives = usable - positives
    if usable >= rows_needed and min(positives, negatives) >= per_class_needed:
        return
    raise InvalidDataset(
        f"{uri} is too small to evaluate: it has {usable:,} usable rows with {positives:,} positives and "
        f"{negatives:,} negatives for target {training_target}"
        + (" (death/hospice encounters not counted)" if excludes else "")
        + f"; a ROC AUC worth comparing needs at least {minimum['held_out_rows']} held-out rows with "
        f"{minimum['held_out_per_class']} of each outcome, so at validation_fraction {fraction:g} a dataset "
        f"of at least {rows_needed:,} usable rows with {per_class_needed:,} positives and "
        f"{per_class_needed:,} negatives"
    )


def _code(value: str) -> str:
    """A discharge code as the schema lists it ('11' for '11', ' 11' or '11.0')."""
    text = value.strip()
    try:
        return str(int(float(text)))
    except ValueError:
        return text


def validate_run_inputs(run: dict[str, Any], *, settings: Settings, s3: Any) -> dict[str, Any]:
    """Check the run's snapshot (training) and score file (scoring); InvalidDataset on the first problem."""
    schema = load_schema(s3, settings.bucket, settings.schema_key)
    dataset_uri = parse_s3_uri(run["snapshotUri"])
    sample = read_sample(s3, dataset_uri, settings)
    hyperparameters = run.get("hyperparameters") or {}
    dataset = check_table(
        sample,
        dataset_uri,
        schema,
        purpose="training",
        training_target=hyperparameters.get("target"),
        validation_fraction=hyperparameters.get("validation_fraction"),
    )
    score_uri = parse_s3_uri(run["scoreUri"])
    if score_uri.key.endswith("/"):
        return {"dataset": dataset, "scoreFile": check_score_parts(s3, score_uri, schema, settings)}
    if score_uri == dataset_uri:
        # The default: a run scores its own dataset. The training checks are a superset of the
        # scoring ones (required scoring columns are required for training too), so reading and
        # checking the same object again would only cost time.
        return {"dataset": dataset, "scoreFile": dict(dataset)}
    score = check_table(read_sample(s3, score_uri, settings), score_uri, schema, purpose="scoring")
    return {"dataset": dataset, "scoreFile": score}


def score_parts(s3: Any, prefix: S3Uri) -> list[S3Uri]:
    """The objects under a prefix of parts, in key order (the transform reads them all); refused
    when there are none or more than MAX_SCORE_PARTS."""
    parts: list[S3Uri] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=prefix.bucket, Prefix=prefix.key):
        for item in page.get("Contents", []):
            if item["Key"].endswith("/"):  # a console "folder" marker, not data
                continue
            parts.append(S3Uri(prefix.bucket, item["Key"]))
            if len(parts) > MAX_SCORE_PARTS:
                raise InvalidDataset(
                    f"{prefix} holds more than {MAX_SCORE_PARTS} parts; join some (each part's sample is "
                    "checked before training)"
                )
    if not parts:
        raise InvalidDataset(f"{prefix} holds no parts to score (no objects under the prefix)")
    return sorted(parts, key=lambda uri: uri.key)


def check_score_parts(s3: Any, prefix: S3Uri, schema: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Each part of a prefix checked like a score file (a bounded sample each); the parts must share
    one header (the transform passes one SCORING_COLUMNS) and one compression (one CompressionType)."""
    summaries = []
    for part in score_parts(s3, prefix):
        if not part.key.endswith((".csv", ".csv.gz")):
            raise InvalidDataset(f"{prefix} holds {part.name}, which is not a .csv or .csv.gz part")
        summary = check_table(read_sample(s3, part, settings), part, schema, purpose="scoring")
        first = summaries[0] if summaries else summary
        if summary["header"] != first["header"]:
            other = parse_s3_uri(first["uri"]).name
            raise InvalidDataset(
                f"the parts of {prefix} must share one header: {part.name} has "
                f"{summary['header'][:200]!r}, {other} has {first['header'][:200]!r}"
            )
        if summary["compressionType"] != first["compressionType"]:
            raise InvalidDataset(
                f"the parts of {prefix} must all be gzip or all plain CSV: {part.name} is "
                f"{'gzip' if summary['compressed'] else 'plain'}, "
                f"{parse_s3_uri(first['uri']).name} is {'gzip' if first['compressed'] else 'plain'}"
            )
        summaries.append(summary)
    first = summaries[0]
    return {
        "uri": str(prefix),
        "parts": len(summaries),
        "columns": first["columns"],
        "sampledRows": sum(s["sampledRows"] for s in summaries),
        "sampleIsWholeFile": all(s["sampleIsWholeFile"] for s in summaries),
        "compressed": first["compressed"],
        "header": first["header"],
        "compressionType": first["compressionType"],
    }


@instrument(logger, metrics)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    settings = load_settings()
    try:
        result = validate_run_inputs(event["run"], settings=settings, s3=aws_clients.client("s3"))
    except InvalidDataset as exc:
        metrics.add_metric(name="DatasetsRejected", unit=MetricUnit.Count, value=1)
        logger.warning("dataset rejected", extra={"reason": str(exc)})
        raise
    metrics.add_metric(name="DatasetsAccepted", unit=MetricUnit.Count, value=1)
    return result
