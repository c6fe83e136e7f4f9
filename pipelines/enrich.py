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

`python3 enrich.py --model M --data D --output O`: `O` gets the enriched parts and
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


def enrich(model_path: str, data_path: str, output_dir: str) -> dict[str, Any]:
    """Write every part of `data_path` to `output_dir` (same relative names, same compression) with
    the history columns; return (and write) the summary. DatasetError for a repeated encounter_id
    across the whole input, or a history artifact that is not the model's."""
    from pipelines.data import read_frame
    from pipelines.history import add_history
    from pipelines.inference import load_model_dir, sniff_scoring_file

    bundle = load_model_dir(model_path)
    files = list_data_files(data_path)
    root = data_path if os.path.isdir(data_path) else os.path.dirname(data_path)
    frames, layouts = [], []
    for path in files:
        name, compression, layout = sniff_scoring_file(path)
        frames.append(
            read_frame(path, layout["columns"], name, compression=compression, header=layout["header"])
        )
        layouts.append(compression)
    sizes = [len(f) for f in frames]
    whole = pd.concat(frames, ignore_index=True, sort=False) if len(frames) > 1 else frames[0]
    has_patient = schema.GROUP_COLUMN in whole.columns and bool(whole[schema.GROUP_COLUMN].notna().any())
    enriched = add_history(whole, bundle.history) if bundle.history_columns else whole
    os.makedirs(output_dir, exist_ok=True)
    offset = 0
    for path, size, compression in zip(files, sizes, layouts):
        part = enriched.iloc[offset : offset + size]
        offset += size
        target = os.path.join(output_dir, os.path.relpath(path, root))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        # Full precision (repr): the transform must read back the very values computed here.
        text = part.to_csv(index=False, na_rep="")
        if compression == "gzip":
            with gzip.open(target, "wt", newline="") as handle:
                handle.write(text)
        else:
            with open(target, "w", newline="") as handle:
                handle.write(text)
    with_earlier = (
        int((enriched["history_encounters"] > 0).sum()) if "history_encounters" in enriched.columns else 0
    )
    summary: dict[str, Any] = {
        "rows": len(enriched),
        "parts": len(files),
        "history": bool(bundle.history_columns),
        "patient_column": has_patient,
        "rows_with_earlier_encounters": with_earlier,
        "message": None if has_patient or not bundle.history_columns else NO_PATIENT_SENTENCE,
    }
    with open(os.path.join(output_dir, SUMMARY_FILE), "w") as handle:
        json.dump(summary, handle, indent=2, sort_keys=True)
    return summary


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Processing-job entry point: exit 1 with the DatasetError's sentence on bad input."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model.tar.gz, a directory holding it, or a model dir")
    parser.add_argument("--data", required=True, help="the scoring CSV (or .csv.gz) or a directory of parts")
    parser.add_argument("--output", required=True, help="directory for the enriched parts")
    args = parser.parse_args(argv)
    try:
        summary = enrich(args.model, args.data, args.output)
    except (DatasetError, OSError) as exc:
        print(f"history enrichment failed: {exc}", file=sys.stderr)
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
