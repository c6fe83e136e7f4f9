"""The EnrichHistory processing job: the whole scoring input gets its patient history before the
batch transform splits it.

Batch transform cuts each file into mini-batches by line (`SplitType: Line`) and spreads a prefix's
parts over instances, so `input_fn` sees one mini-batch: a patient's earlier encounter may sit in
another mini-batch, another part or another instance. This job reads every part at once (plus the
scoring model's `patient_history.csv.gz`), computes the history columns with the one function
(`pipelines.history.history_features`) and writes each part back under its own name with the history
columns appended, so the transform's spread over instances is unchanged and `input_fn` finds the
columns already there (`pipelines.inference.with_history` then computes nothing). A file scored in any
number of shards therefore gets the features it gets scored whole
(tests/pipelines/test_patient_history.py).

`python3 enrich.py --model M --data D --output O --summary S`: `O` gets the enriched parts (the
schema's columns in its order, then the history's: `ENRICHED_COLUMNS`), `S` gets
`history_summary.json` (rows, how many had earlier encounters, and a sentence when the input has
no `patient_nbr`: every row is then scored as a first encounter).
"""

import argparse
import gzip
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, Optional

import pandas as pd

from pipelines import schema
from pipelines.data import DatasetError, list_data_files

SUMMARY_FILE = "history_summary.json"
NO_PATIENT_SENTENCE = (
    "The scoring file has no patient_nbr column: every encounter was scored as a first encounter "
    "(no patient history)."
)


# The enriched parts' columns, always in this order: every column of the schema (an absent one
# empty), then the history's. The BatchTransform state passes this very line as SCORING_COLUMNS (a
# test keeps the ASL's literal equal to it), so the header-less mini-batches parse alike.
ENRICHED_COLUMNS = (*schema.COLUMNS, *schema.HISTORY_COLUMNS)


def enriched_header() -> str:
    return ",".join(ENRICHED_COLUMNS)


def enrich(
    model_path: str, data_path: str, output_dir: str, summary_dir: Optional[str] = None
) -> dict[str, Any]:
    """Write every part of `data_path` to `output_dir` (same relative names, same compression) with
    the schema's columns as the file had them (the text unchanged) and the history columns; return
    (and write into `summary_dir`, default `output_dir`) the summary. DatasetError for a repeated
    encounter_id across the whole input, or a history artifact that is not the model's."""
    from pipelines.data import read_frame
    from pipelines.history import history_features
    from pipelines.inference import load_model_dir, sniff_scoring_file

    bundle = load_model_dir(model_path)
    files = list_data_files(data_path)
    root = data_path if os.path.isdir(data_path) else os.path.dirname(data_path)
    typed, texts, compressions = [], [], []
    for path in files:
        name, compression, layout = sniff_scoring_file(path)
        header = layout["header"]
        # Typed (the named errors, `?` missing) for the history; as text for writing back unchanged.
        typed.append(read_frame(path, layout["columns"], name, compression=compression, header=header))
        texts.append(
            pd.read_csv(
                path,
                dtype=str,
                keep_default_na=False,
                na_filter=False,
                encoding="utf-8-sig",
                compression=compression,
                **({} if header else {"header": None, "names": layout["columns"]}),
            )
        )
        compressions.append(compression)
    whole = pd.concat(typed, ignore_index=True, sort=False) if len(typed) > 1 else typed[0]
    has_patient = schema.GROUP_COLUMN in whole.columns and bool(whole[schema.GROUP_COLUMN].notna().any())
    history = history_features(whole, bundle.history)
    offset = 0
    parts = []
    for text in texts:
        part = pd.DataFrame(index=range(len(text)))
        for column in schema.COLUMNS:
            part[column] = text[column].to_numpy() if column in text.columns else ""
        block = history.iloc[offset : offset + len(text)].reset_index(drop=True)
        for column in schema.HISTORY_COLUMNS:
            part[column] = block[column].to_numpy()
        offset += len(text)
        parts.append(part)
    os.makedirs(output_dir, exist_ok=True)
    for path, part, compression in zip(files, parts, compressions):
        target = os.path.join(output_dir, os.path.relpath(path, root))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        # Full precision (repr): the transform must read back the very values computed here.
        content = part.to_csv(index=False, na_rep="", columns=list(ENRICHED_COLUMNS))
        if compression == "gzip":
            with gzip.open(target, "wt", newline="", compresslevel=1) as handle:
                handle.write(content)
        else:
            with open(target, "w", newline="") as handle:
                handle.write(content)
    summary: dict[str, Any] = {
        "rows": len(whole),
        "parts": len(files),
        "history": bool(bundle.history_columns),
        "patient_column": has_patient,
        "rows_with_earlier_encounters": int((history["history_encounters"] > 0).sum()),
        "message": None if has_patient or not bundle.history_columns else NO_PATIENT_SENTENCE,
    }
    summary_dir = summary_dir or output_dir
    os.makedirs(summary_dir, exist_ok=True)
    with open(os.path.join(summary_dir, SUMMARY_FILE), "w") as handle:
        json.dump(summary, handle, indent=2, sort_keys=True)
    return summary


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Processing-job entry point: on bad input exit 1 with the DatasetError's sentence (on stderr
    and in --failure-file, which SageMaker reports as the job's FailureReason)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model.tar.gz, a directory holding it, or a model dir")
    parser.add_argument("--data", required=True, help="the scoring CSV (or .csv.gz) or a directory of parts")
    parser.add_argument("--output", required=True, help="directory for the enriched parts")
    parser.add_argument("--summary", help="directory for history_summary.json (default: --output)")
    parser.add_argument("--failure-file", help="where the failure sentence goes (/opt/ml/output/failure)")
    args = parser.parse_args(argv)
    try:
        summary = enrich(args.model, args.data, args.output, args.summary)
    except (DatasetError, OSError) as exc:
        print(f"history enrichment failed: {exc}", file=sys.stderr)
        if args.failure_file:
            os.makedirs(os.path.dirname(args.failure_file) or ".", exist_ok=True)
            with open(args.failure_file, "w") as handle:
                handle.write(str(exc))
        return 1
    print(
        "history rows={} parts={} with_earlier={}{}".format(
            summary["rows"],
            summary["parts"],
            summary["rows_with_earlier_encounters"],
            f" note={summary['message']}" if summary["message"] else "",
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
