"""Reading encounter CSV files (training channel, scoring payloads) with named, user-facing errors.

Every check here exists because a real upload failed that way: the error names the case (a stable
code the tests and the failure file use) and says what to fix, instead of a pandas traceback.
Missing values are `?` (and empty fields); the literal `None` of `max_glu_serum`/`A1Cresult` is
"not measured" and stays a category: `keep_default_na=False` makes pandas 1.x and 2.x+ read it alike.
"""

import codecs
import contextlib
import gzip
import io
import os
import warnings
import zlib
from collections.abc import Iterator, Sequence
from typing import Optional, Union

import numpy as np
import pandas as pd

from pipelines import schema
from pipelines.errors import DatasetError

__all__ = [
    "DatasetError",
    "excluded_rows",
    "list_data_files",
    "not_scored_reasons",
    "read_frame",
    "read_frame_chunks",
    "read_training_data",
]

NA_VALUES = [schema.MISSING_MARKER, ""]
GZIP_MAGIC = b"\x1f\x8b"
DATA_SUFFIXES = (".csv", ".csv.gz", ".gz", ".txt")
# Fewer rows than this cannot give a patient-grouped split with both classes on each side.
MIN_TRAINING_ROWS = 20
_SNIFF_BYTES = 1 << 16
# Rows per chunk of a streamed read: ~20 MB of parsed columns, whatever the file's size.
CHUNK_ROWS = 50_000


def column_dtypes(columns: Sequence[str]) -> dict[str, object]:
    """Explicit dtypes: numeric counts as float64 (missing-aware), everything else as text objects.

    Object text is the fastest text read in every pandas we run on (category parsing is 3x slower).
    """
    numeric = set(schema.MODEL_NUMERIC_COLUMNS)
    return {c: ("float64" if c in numeric else object) for c in columns}


def excluded_rows(frame: pd.DataFrame, target: str) -> np.ndarray:
    """Encounters ending in death or hospice: no readmission is possible, so the 30-day target drops them.

    The one definition: training leaves these rows out of fitting and evaluation, and scoring leaves
    them unscored and out of the drift counts, so a model is never asked about rows it never saw.
    A frame without the discharge column (a header-less extract that lacks it) excludes nothing.
    """
    if target not in schema.TARGETS_EXCLUDING_DEATH_OR_HOSPICE or (
        schema.DISCHARGE_COLUMN not in frame.columns
    ):
        return np.zeros(len(frame), dtype=bool)
    codes = pd.to_numeric(frame[schema.DISCHARGE_COLUMN], errors="coerce")
    return codes.isin(schema.EXCLUDED_DISCHARGE_DISPOSITIONS).to_numpy()


def not_scored_reasons(frame: pd.DataFrame, target: str) -> np.ndarray:
    """Per row, why it is not scored (`expired` / `hospice`, schema.NOT_SCORED_REASONS) or "" (scored)."""
    reasons = np.full(len(frame), "", dtype=object)
    excluded = excluded_rows(frame, target)
    if excluded.any():
        codes = pd.to_numeric(frame[schema.DISCHARGE_COLUMN], errors="coerce").to_numpy()[excluded]
        reasons[excluded] = [schema.NOT_SCORED_REASONS[int(c)] for c in codes]
    return reasons


def list_data_files(path: str) -> list[str]:
    """The CSV files of a channel: one file, or every data file of a directory tree, sorted."""
    if os.path.isfile(path):
        return [path]
    if not os.path.isdir(path):
        raise DatasetError("no_data", f"{path} does not exist")
    found = []
    for root, _dirs, files in os.walk(path):
        for name in files:
            if not name.startswith("."):
                found.append(os.path.join(root, name))
    found.sort()
    data = [f for f in found if f.lower().endswith(DATA_SUFFIXES)]
    # A channel may hold files without a suffix (SageMaker keeps S3 key names): take them all then.
    files = data or found
    if not files:
        raise DatasetError("no_data", f"{path} holds no CSV file")
    return files


def _is_gzip(path: str) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == GZIP_MAGIC


def _head_text(path: str, compressed: bool) -> str:
    """The first bytes of the file as text; raises the named error for empty/binary/corrupt input."""
    name = os.path.basename(path)
    if os.path.getsize(path) == 0:
        raise DatasetError("empty_file", f"{name} is empty (0 bytes)")
    try:
        if compressed:
            with gzip.open(path, "rb") as handle:
                raw = handle.read(_SNIFF_BYTES)
        else:
            with open(path, "rb") as handle:
                raw = handle.read(_SNIFF_BYTES)
    except (EOFError, OSError, zlib.error) as exc:
        raise DatasetError("corrupt_gzip", f"{name} is not a complete gzip file ({exc})") from exc
    return decode_head(raw, name)


def decode_head(raw: bytes, name: str) -> str:
    """Decode the start of a payload; binary content gets the `not_csv` error."""
    if not raw.strip():
        raise DatasetError("empty_file", f"{name} is empty")
    if b"\x00" in raw:
        raise DatasetError("not_csv", f"{name} is binary, not a CSV text file")
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    try:
        # final=False: a multi-byte character cut at the sniff boundary is not an error.
        return decoder.decode(raw, final=False)
    except UnicodeDecodeError as exc:
        raise DatasetError("not_csv", f"{name} is not UTF-8 CSV text ({exc})") from exc


def parse_header(first_line: str, name: str) -> list[str]:
    """Header fields; a header that is one field holding another delimiter is `wrong_delimiter`."""
    fields = [f.strip().strip('"') for f in first_line.rstrip("\r\n").split(",")]
    if len(fields) == 1:
        for delimiter, label in ((";", "semicolon"), ("\t", "tab"), ("|", "pipe")):
            if delimiter in first_line:
                raise DatasetError(
                    "wrong_delimiter",
                    f"{name} is {label}-separated; the file must be comma-separated",
                )
    return fields


def check_columns(columns: Sequence[str], required: Sequence[str], name: str) -> list[str]:
    """Name the missing required columns; warn about (and return) the columns to ignore."""
    present = set(columns)
    if schema.TARGET_COLUMN in required and schema.TARGET_COLUMN not in present:
        raise DatasetError("missing_target", f"{name} has no target column '{schema.TARGET_COLUMN}'")
    missing = [c for c in required if c not in present]
    if missing:
        raise DatasetError(
            "missing_columns", "{} lacks required column(s): {}".format(name, ", ".join(missing))
        )
    duplicated = sorted({c for c in columns if list(columns).count(c) > 1})
    if duplicated:
        raise DatasetError(
            "duplicate_columns", "{} repeats column(s): {}".format(name, ", ".join(duplicated))
        )
    unknown = [c for c in columns if c not in schema.COLUMNS and c not in schema.HISTORY_COLUMNS]
    if unknown:
        warnings.warn("{}: ignoring unknown column(s): {}".format(name, ", ".join(unknown)), stacklevel=2)
    return unknown


def _locate_non_numeric(
    source: Union[str, io.StringIO], columns: list[str], name: str, compression: Optional[str]
) -> DatasetError:
    """Re-read as text to say which numeric column holds text, with an example and its line.

    Read in chunks and stopped at the first bad value, so locating the error in a 10 GB file costs
    no more memory than reading it.
    """
    if isinstance(source, io.StringIO):
        source.seek(0)
    chunks = pd.read_csv(
        source,
        dtype=object,
        keep_default_na=False,
        na_values=NA_VALUES,
        encoding="utf-8-sig",
        compression=compression,
        usecols=columns,
        chunksize=CHUNK_ROWS,
    )
    offset = 0
    with contextlib.closing(chunks):  # pandas < 1.2 (the container's 1.1.3): no context manager
        for text in chunks:
            for column in schema.NUMERIC_COLUMNS:
                if column not in text.columns:
                    continue
                values = pd.to_numeric(text[column], errors="coerce")
                bad = values.isna() & text[column].notna()
                if bad.any():
                    row = int(np.flatnonzero(bad.to_numpy())[0])
                    return DatasetError(
                        "non_numeric",
                        f"{name}: column '{column}' must be numeric but holds "
                        f"'{text[column].iloc[row]}' (line {offset + row + 2})",
                    )
            offset += len(text)
    return DatasetError("unparseable", f"{name} could not be parsed as CSV")


def _read_options(
    columns: Sequence[str], keep: Optional[Sequence[str]], compression: Optional[str]
) -> tuple[list[str], dict[str, object]]:
    """The columns to parse and the read_csv options every reader here shares."""
    # The history columns are read too: an enriched scoring part (EnrichHistory) carries them.
    known = [
        c
        for c in columns
        if (c in schema.COLUMNS or c in schema.HISTORY_COLUMNS) and (keep is None or c in keep)
    ]
    options: dict[str, object] = dict(
        dtype=column_dtypes(known),
        keep_default_na=False,
        na_values=NA_VALUES,
        encoding="utf-8-sig",
        compression=compression,
        usecols=known,
    )
    return known, options


def _parse_error(
    exc: Exception,
    source: Union[str, io.StringIO],
    known: list[str],
    name: str,
    compression: Optional[str],
    header: bool,
) -> DatasetError:
    """The named error for a read_csv failure (whole-frame and chunked reads alike)."""
    if isinstance(exc, (EOFError, zlib.error, gzip.BadGzipFile)):
        return DatasetError("corrupt_gzip", f"{name} is a truncated or corrupt gzip file ({exc})")
    if isinstance(exc, pd.errors.ParserError):
        return DatasetError("malformed_csv", f"{name} is not well-formed CSV: {exc}")
    if header:
        return _locate_non_numeric(source, known, name, compression)
    return DatasetError("non_numeric", f"{name}: a numeric column holds text ({exc})")


# ParserError is a ValueError: listed first so it keeps its own name.
_READ_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile, pd.errors.ParserError, ValueError)


def read_frame(
    source: Union[str, io.StringIO],
    columns: list[str],
    name: str,
    compression: Optional[str] = None,
    header: bool = True,
    keep: Optional[Sequence[str]] = None,
) -> pd.DataFrame:
    """Read the known columns of one CSV with explicit dtypes; parse failures become named errors.

    `keep` narrows the read to those columns (a model needs ~35 of the 50; parsing fewer is faster).
    """
    known, options = _read_options(columns, keep, compression)
    try:
        if header:
            return pd.read_csv(source, **options)
        return pd.read_csv(source, header=None, names=columns, **options)
    except _READ_ERRORS as exc:
        raise _parse_error(exc, source, known, name, compression, header) from exc


def read_frame_chunks(
    source: str,
    columns: list[str],
    name: str,
    compression: Optional[str] = None,
    header: bool = True,
    keep: Optional[Sequence[str]] = None,
    chunk_rows: int = CHUNK_ROWS,
) -> Iterator[pd.DataFrame]:
    """`read_frame` as consecutive frames of at most `chunk_rows` rows: memory bounded by the chunk,
    not the file (same dtypes, same named errors, raised when the bad chunk is reached)."""
    known, options = _read_options(columns, keep, compression)
    try:
        if header:
            reader = pd.read_csv(source, chunksize=chunk_rows, **options)
        else:
            reader = pd.read_csv(source, header=None, names=columns, chunksize=chunk_rows, **options)
        with contextlib.closing(reader):  # pandas < 1.2: TextFileReader is no context manager
            yield from reader
    except _READ_ERRORS as exc:
        raise _parse_error(exc, source, known, name, compression, header) from exc


def read_training_file(path: str) -> pd.DataFrame:
    """One training file (CSV or CSV.gz, detected by content), validated up to its columns."""
    name = os.path.basename(path)
    compressed = _is_gzip(path)
    head = _head_text(path, compressed)
    columns = parse_header(head.splitlines()[0] if head.splitlines() else "", name)
    check_columns(columns, schema.REQUIRED_TRAINING_COLUMNS, name)
    frame = read_frame(path, columns, name, compression="gzip" if compressed else None)
    if len(frame) == 0:
        raise DatasetError("no_rows", f"{name} has a header but no data rows")
    return frame


def read_training_data(path: str) -> pd.DataFrame:
    """All files of the training channel as one frame, with row-level checks across files."""
    frames = [read_training_file(f) for f in list_data_files(path)]
    frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True, sort=False)
    validate_training_rows(frame)
    return frame


def validate_training_rows(frame: pd.DataFrame) -> None:
    """Checks that need all rows: enough rows, ids present and unique, known outcome values."""
    if len(frame) < MIN_TRAINING_ROWS:
        raise DatasetError(
            "too_few_rows",
            f"{len(frame)} data row(s); training needs at least {MIN_TRAINING_ROWS}",
        )
    for column in (schema.ID_COLUMN, schema.GROUP_COLUMN, schema.TARGET_COLUMN):
        if frame[column].isna().any():
            raise DatasetError("missing_values", f"column '{column}' has empty or '?' values")
    duplicated = frame[schema.ID_COLUMN].duplicated()
    if duplicated.any():
        example = frame[schema.ID_COLUMN][duplicated].iloc[0]
        raise DatasetError(
            "duplicate_encounter_id",
            f"{int(duplicated.sum())} duplicate {schema.ID_COLUMN} value(s), e.g. {example}",
        )
    unknown = sorted(set(frame[schema.TARGET_COLUMN].unique()) - set(schema.TARGET_VALUES))
    if unknown:
        raise DatasetError(
            "bad_target",
            "column '{}' holds {} (expected one of {})".format(
                schema.TARGET_COLUMN, ", ".join(repr(v) for v in unknown[:5]), ", ".join(schema.TARGET_VALUES)
            ),
        )
