"""The batch-transform host: how a file becomes requests, and what it writes."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import pytest

from emulator import serving

PROGRAM = Path(__file__).parent / "fixtures" / "project" / "pipelines" / "job_code"


def config(**overrides: object) -> dict:
    base = {"split_type": "None", "batch_strategy": "SingleRecord", "max_payload_mb": 6}
    return {**base, **overrides}


def test_split_none_sends_the_whole_file_as_one_request() -> None:
    data = b"id,x\n1,2\n3,4\n"
    assert list(serving._requests(data, config())) == [data]


def test_split_none_over_max_payload_fails_like_sagemaker() -> None:
    with pytest.raises(serving.TransformError, match="Too much data for max payload size"):
        list(serving._requests(b"x" * (1024 * 1024 + 1), config(max_payload_mb=1)))


def test_split_line_single_record_sends_one_line_per_request() -> None:
    assert list(serving._requests(b"a\nb\n\nc", config(split_type="Line"))) == [b"a\n", b"b\n", b"c\n"]


def test_split_line_multi_record_batches_up_to_max_payload() -> None:
    line = b"x" * 400_000 + b"\n"  # three lines fit in 1 MB, the fourth starts a new request
    batches = list(
        serving._requests(line * 4, config(split_type="Line", batch_strategy="MultiRecord", max_payload_mb=1))
    )
    assert [len(b) for b in batches] == [len(line) * 2, len(line) * 2]


def test_host_process_loads_the_model_once_and_writes_one_out_file_per_input(tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "model.json").write_text(json.dumps({"rows": 2}))
    inputs, outputs = tmp_path / "in", tmp_path / "out"
    (inputs / "sub").mkdir(parents=True)
    outputs.mkdir()
    (inputs / "sub" / "a.csv.gz").write_bytes(gzip.compress(b"id,x,y\n10,1,1\n11,1,1\n"))
    cfg = {
        "code_dir": str(PROGRAM),
        "program": "inference.py",
        "model_dir": str(model_dir),
        "inputs": [str(inputs / "sub" / "a.csv.gz")],
        "input_root": str(inputs),
        "output_root": str(outputs),
        "content_type": "text/csv",
        "split_type": "None",
        "compression": "Gzip",
        "accept": "text/csv",
        "assemble_with": "Line",
        "batch_strategy": "SingleRecord",
        "max_payload_mb": 6,
    }
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))

    done = subprocess.run(
        [sys.executable, serving.__file__, str(tmp_path / "cfg.json")],
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert (outputs / "sub" / "a.csv.gz.out").read_text().splitlines() == [
        "id,probability,prediction",
        "10,0.25,0",
        "11,0.25,0",
    ]


def test_host_reports_a_handler_error_as_the_failure_reason(tmp_path: Path) -> None:
    cfg = {
        "code_dir": str(PROGRAM),
        "program": "inference.py",
        "model_dir": str(tmp_path / "missing"),
        "inputs": [],
        "input_root": str(tmp_path),
        "output_root": str(tmp_path / "out"),
        "content_type": "text/csv",
        "split_type": "None",
        "compression": "None",
        "accept": None,
        "assemble_with": "None",
        "batch_strategy": "SingleRecord",
        "max_payload_mb": 6,
    }
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))

    done = subprocess.run(
        [sys.executable, serving.__file__, str(tmp_path / "cfg.json")],
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 1
    assert (
        (tmp_path / "failure")
        .read_text()
        .startswith("ClientError: the model server failed: FileNotFoundError")
    )
