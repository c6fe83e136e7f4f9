"""The batch-transform host: how a file becomes requests, and what it writes."""

from __future__ import annotations

import gzip
import io
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


def host_config(tmp_path: Path, inputs: list[Path], **overrides: object) -> Path:
    """A serving config for the fixture program over `inputs` (under tmp_path/in), written to disk."""
    model_dir = tmp_path / "model"
    model_dir.mkdir(exist_ok=True)
    (model_dir / "model.json").write_text(json.dumps({"rows": 2}))
    (tmp_path / "out").mkdir(exist_ok=True)
    cfg = {
        "code_dir": str(PROGRAM),
        "program": "inference.py",
        "model_dir": str(model_dir),
        "inputs": [str(p) for p in inputs],
        "input_root": str(tmp_path / "in"),
        "output_root": str(tmp_path / "out"),
        "content_type": "text/csv",
        "split_type": "Line",
        "compression": "None",
        "accept": "text/csv",
        "assemble_with": "Line",
        "batch_strategy": "MultiRecord",
        "max_payload_mb": 1,
        **overrides,
    }
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps(cfg))
    return path


def run_host(cfg: Path, **env: str) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, serving.__file__, str(cfg)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **env},
    )


def part(path: Path, ids: range, header: str = "x,id") -> Path:
    """A CSV part whose `id` is its second column, padded so a part spans several 1 MB mini-batches."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "\n" + "".join(f"{'p' * 200},{i}\n" for i in ids))
    return path


def test_multi_record_mini_batches_hold_whole_lines_and_never_pass_the_limit() -> None:
    lines = [b"%d,%s\n" % (i, b"v" * (i % 97)) for i in range(40_000)]
    data = b"".join(lines[:10]) + b"\n\r\n" + b"".join(lines[10:])  # blank lines are not records

    batches = list(
        serving._requests(
            io.BytesIO(data), config(split_type="Line", batch_strategy="MultiRecord", max_payload_mb=0.1)
        )
    )

    assert len(batches) > 5
    assert all(len(b) <= 0.1 * serving.MB for b in batches)
    assert all(b.endswith(b"\n") for b in batches)
    assert b"".join(batches) == b"".join(lines)


def test_a_single_record_over_the_payload_limit_fails_the_multi_record_split() -> None:
    data = b"a,1\n" + b"x" * (serving.MB + 10) + b"\nb,2\n"

    with pytest.raises(serving.TransformError, match="Too much data for max payload size: a single record"):
        list(
            serving._requests(data, config(split_type="Line", batch_strategy="MultiRecord", max_payload_mb=1))
        )


def test_crlf_lines_and_a_bom_pass_the_line_split_untouched() -> None:
    data = b"\xef\xbb\xbfid,x\r\n1,2\r\n3,4\r\n"

    batches = list(serving._requests(data, config(split_type="Line", batch_strategy="MultiRecord")))

    assert batches == [data]


def test_a_file_over_several_mini_batches_gets_one_header_and_every_row_once(tmp_path: Path) -> None:
    source = part(tmp_path / "in" / "a.csv", range(12_000))  # ~2.5 MB: three 1 MB mini-batches

    done = run_host(host_config(tmp_path, [source]), SCORING_COLUMNS="x,id")

    assert done.returncode == 0, done.stderr
    assert "a.csv: 3 request(s)" in done.stdout
    lines = (tmp_path / "out" / "a.csv.out").read_text().splitlines()
    assert lines[0] == "id,probability,prediction"
    assert lines.count("id,probability,prediction") == 1
    assert [line.split(",")[0] for line in lines[1:]] == [str(i) for i in range(12_000)]


def test_files_are_spread_round_robin_over_sorted_keys() -> None:
    assigned = serving.assign_files(["/in/c.csv", "/in/a.csv", "/in/b.csv"], "/in", 2)

    assert assigned == [["/in/a.csv", "/in/c.csv"], ["/in/b.csv"]]
    assert serving.assign_files(["/in/a.csv"], "/in", 3) == [["/in/a.csv"], [], []]


def test_three_parts_on_two_instances_give_every_row_once_with_one_header_per_part(tmp_path: Path) -> None:
    parts = [part(tmp_path / "in" / f"part-{n}.csv", range(n * 6000, (n + 1) * 6000)) for n in range(3)]

    done = run_host(host_config(tmp_path, parts, instance_count=2), SCORING_COLUMNS="x,id")

    assert done.returncode == 0, done.stderr
    assert "instance 1 of 2: part-0.csv, part-2.csv" in done.stdout
    assert "instance 2 of 2: part-1.csv" in done.stdout
    assert done.stdout.count("model_fn loaded the model") == 2  # one serving process per instance
    ids = []
    for n in range(3):
        lines = (tmp_path / "out" / f"part-{n}.csv.out").read_text().splitlines()
        assert lines[0] == "id,probability,prediction" and lines.count(lines[0]) == 1
        ids += [int(line.split(",")[0]) for line in lines[1:]]
    assert ids == list(range(18_000))


def test_a_failing_instance_fails_the_job_with_its_reason_after_the_others_end(tmp_path: Path) -> None:
    good = tmp_path / "in" / "a.csv.gz"
    good.parent.mkdir(parents=True)
    good.write_bytes(gzip.compress(b"x,id\np,1\n"))
    bad = tmp_path / "in" / "b.csv.gz"
    bad.write_bytes(b"x,id\np,2\n")  # named .gz, not gzip

    done = run_host(host_config(tmp_path, [good, bad], instance_count=2, compression="Gzip"))

    assert done.returncode == 1
    reason = (tmp_path / "failure").read_text()
    assert reason.startswith("ClientError: instance 2: b.csv.gz is not valid Gzip")
    assert (tmp_path / "out" / "a.csv.gz.out").read_text().splitlines() == [
        "id,probability,prediction",
        "1,0.25,0",
    ]
