"""The batch-transform host: the local stand-in for SageMaker's transform agent and model server.

Run as a script by `emulator.sagemaker` (`python serving.py <config.json>`), in the job's own
process with no AWS access. It does what SageMaker's batch transform does around the serving
handlers of the model's `SAGEMAKER_PROGRAM`: `model_fn(model_dir)` once, then for every input file
cut the file into requests (`SplitType`, `BatchStrategy`, `MaxPayloadInMB`), decompress Gzip,
call `input_fn -> predict_fn -> output_fn` per request and write `<file>.out` (responses joined by
newlines under `AssembleWith: Line`). A file is read as a stream, one mini-batch at a time, so a
serving process holds about one payload, not the file.

With `instance_count` above 1 this process is the job's agent: it spreads the input files across
instances as SageMaker does with the objects of an S3Prefix (whole files, round-robin over the
sorted keys: deterministic), starts one serving process per instance that has files, and fails the
job with the first failing instance's reason once every instance has ended. Standard library only:
it must not depend on the emulator.
"""

from __future__ import annotations

import gzip
import importlib.util
import io
import json
import resource
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

MB = 1024 * 1024
READ_BYTES = 1024 * 1024  # read size of SplitType None and of a payload limit of 0 (no limit)


class TransformError(Exception):
    """A failure SageMaker reports as the job's FailureReason."""


def _load_program(code_dir: Path, program: str) -> Any:
    sys.path.insert(0, str(code_dir))
    path = code_dir / program
    if not path.is_file():
        raise TransformError(f"ClientError: SAGEMAKER_PROGRAM {program} not found in the source directory")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    if not hasattr(module, "model_fn"):
        raise TransformError(f"ClientError: {program} does not define model_fn(model_dir)")
    if hasattr(module, "transform_fn") and any(
        hasattr(module, name) for name in ("input_fn", "predict_fn", "output_fn")
    ):
        raise TransformError("ClientError: transform_fn cannot be mixed with input_fn/predict_fn/output_fn")
    return module


def _record_too_large(config: dict[str, Any], size: str) -> TransformError:
    """A line the split cannot fit in one request (SageMaker's wording starts the same way)."""
    return TransformError(
        f"ClientError: Too much data for max payload size: a single record of {size} exceeds "
        f"MaxPayloadInMB={config['max_payload_mb']:g}. Raise MaxPayloadInMB (at most 100) or shorten "
        "the record."
    )


def _requests(source: bytes | IO[bytes], config: dict[str, Any]) -> Iterator[bytes]:
    """Cut one (decompressed) input stream into request payloads, as the transform agent does.

    `SplitType: None` sends the stream as one request; `Line` cuts it at newlines (blank lines are
    not records) and `MultiRecord` packs whole lines into payloads of at most MaxPayloadInMB
    (MiB, as SageMaker counts it), `SingleRecord` sends one line per request. A record larger
    than the limit fails the job, as on SageMaker.
    """
    stream = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    limit = int(config["max_payload_mb"] * MB)
    split = config["split_type"]
    if split in (None, "None"):
        yield _whole(stream, limit, config)
        return
    if split != "Line":
        raise TransformError(f"ClientError: SplitType {split} is not supported locally (None or Line)")
    if config["batch_strategy"] == "SingleRecord":
        for line in stream:
            if not line.strip():
                continue
            line = line if line.endswith(b"\n") else line + b"\n"
            if limit and len(line) > limit:
                raise _record_too_large(config, f"{len(line)} bytes")
            yield line
        return
    yield from _mini_batches(stream, limit, config)


def _whole(stream: IO[bytes], limit: int, config: dict[str, Any]) -> bytes:
    """The whole stream as one payload (SplitType None), refused once it passes the limit."""
    data = stream.read(limit + 1) if limit else stream.read()
    if limit and len(data) > limit:
        size = len(data) + sum(len(chunk) for chunk in iter(lambda: stream.read(READ_BYTES), b""))
        raise TransformError(
            f"ClientError: Too much data for max payload size: the record of {size} bytes exceeds "
            f"MaxPayloadInMB={config['max_payload_mb']:g}. Use SplitType Line or raise MaxPayloadInMB."
        )
    return data


def _mini_batches(stream: IO[bytes], limit: int, config: dict[str, Any]) -> Iterator[bytes]:
    """Whole lines packed into payloads of at most `limit` bytes (the stream read block by block:
    a payload is cut at the last newline of the block, the rest carried into the next one)."""
    carry = b""
    while True:
        data, eof = _fill(stream, carry, limit)
        if eof:
            batch = _without_blank_lines(data)
            if batch.strip():
                yield batch
            return
        cut = data.rfind(b"\n") + 1
        if cut == 0:  # `limit` bytes and no end of line: the record alone is over the limit
            raise _record_too_large(config, f"more than {limit} bytes")
        batch, carry = _without_blank_lines(data[:cut]), data[cut:]
        if batch.strip():
            yield batch


def _fill(stream: IO[bytes], carry: bytes, limit: int) -> tuple[bytes, bool]:
    """`carry` topped up to `limit` bytes from the stream; True when the stream ended first."""
    parts, size = [carry], len(carry)
    while not limit or size < limit:
        chunk = stream.read(limit - size if limit else READ_BYTES)
        if not chunk:
            return b"".join(parts), True
        parts.append(chunk)
        size += len(chunk)
    return b"".join(parts), False


def _without_blank_lines(data: bytes) -> bytes:
    if data.startswith((b"\n", b"\r\n")) or b"\n\n" in data or b"\n\r\n" in data:
        return b"".join(line for line in data.splitlines(keepends=True) if line.strip())
    return data


def _invoke(module: Any, model: Any, payload: bytes, content_type: str, accept: str) -> bytes:
    if hasattr(module, "transform_fn"):
        result = module.transform_fn(model, payload, content_type, accept)
    else:
        body: Any = payload.decode("utf-8") if content_type.startswith("text/") else payload
        data = module.input_fn(body, content_type) if hasattr(module, "input_fn") else body
        prediction = module.predict_fn(data, model) if hasattr(module, "predict_fn") else model.predict(data)
        result = module.output_fn(prediction, accept) if hasattr(module, "output_fn") else prediction
    if isinstance(result, tuple):  # (body, content type) is allowed by the toolkit
        result = result[0]
    if isinstance(result, str):
        return result.encode("utf-8")
    if isinstance(result, (bytes, bytearray)):
        return bytes(result)
    raise TransformError(f"ClientError: output_fn returned {type(result).__name__}, expected str or bytes")


def _open_input(path: Path, compression: str) -> IO[bytes]:
    if compression == "Gzip":
        return gzip.open(path, "rb")
    return open(path, "rb")


def _transform_file(module: Any, model: Any, path: Path, target: Path, config: dict[str, Any]) -> None:
    """One input file through the handlers into `<file>.out`, response by response."""
    accept = config.get("accept") or config["content_type"]
    line_assembly = config["assemble_with"] == "Line"
    requests, size = 0, 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with _open_input(path, config["compression"]) as source, open(target, "wb") as out:
        try:
            for payload in _requests(source, config):
                response = _invoke(module, model, payload, config["content_type"], accept)
                requests += 1
                if line_assembly:  # responses joined by newlines, one at the end
                    response = response.rstrip(b"\n")
                    response = response + b"\n" if response else b""
                out.write(response)
                size += len(response)
        except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
            raise TransformError(f"ClientError: {path.name} is not valid Gzip: {exc}") from exc
    print(f"{path.name}: {requests} request(s) -> {target.name} ({size} bytes)", flush=True)


def run(config: dict[str, Any]) -> None:
    """One instance: the model loaded once, then every input file assigned to it."""
    module = _load_program(Path(config["code_dir"]), config["program"])
    started = time.monotonic()
    model = module.model_fn(config["model_dir"])
    print(f"model_fn loaded the model in {time.monotonic() - started:.2f} s", flush=True)
    input_root, output_root = Path(config["input_root"]), Path(config["output_root"])
    for name in config["inputs"]:
        path = Path(name)
        target = output_root / (str(path.relative_to(input_root)) + ".out")
        _transform_file(module, model, path, target, config)
    print(f"done in {time.monotonic() - started:.2f} s, peak RSS {_peak_rss_mib():.0f} MiB", flush=True)


def _peak_rss_mib() -> float:
    """This process's peak resident memory: /proc's VmHWM, which exec resets (getrusage's ru_maxrss
    survives exec, so it would report the forking runtime's size), else ru_maxrss."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def assign_files(inputs: list[str], input_root: str, instances: int) -> list[list[str]]:
    """Whole files per instance: round-robin over the files sorted by key (deterministic)."""
    ordered = sorted(inputs, key=lambda p: Path(p).relative_to(input_root).as_posix())
    return [ordered[i::instances] for i in range(instances)]


def _failure_path(config: dict[str, Any]) -> Path:
    return Path(config.get("failure_path") or Path(config["output_root"]).parent / "failure")


def run_instances(config: dict[str, Any], config_path: Path) -> int:
    """The job's agent for InstanceCount > 1: one serving process per instance that has files.

    Every instance runs to its end; the job succeeds only if all did, else it fails with the reason
    of the first failing instance (by instance number), named.
    """
    count = int(config["instance_count"])
    assignments = assign_files(list(config["inputs"]), config["input_root"], count)
    children: list[tuple[int, subprocess.Popen[bytes], Path, threading.Thread]] = []
    for index, files in enumerate(assignments, start=1):
        if not files:
            print(f"instance {index} of {count}: no input file assigned", flush=True)
            continue
        child_config = {
            **config,
            "inputs": files,
            "instance_count": 1,
            "failure_path": str(config_path.parent / f"failure-{index}"),
        }
        child_path = config_path.with_name(f"{config_path.stem}-{index}.json")
        child_path.write_text(json.dumps(child_config))
        print(f"instance {index} of {count}: {', '.join(Path(f).name for f in files)}", flush=True)
        proc = subprocess.Popen(
            [sys.executable, __file__, str(child_path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        pump = threading.Thread(target=_prefix_lines, args=(proc, f"[instance-{index}] "), daemon=True)
        pump.start()
        children.append((index, proc, Path(child_config["failure_path"]), pump))
    failures = []
    for index, proc, failure, pump in children:
        rc = proc.wait()
        pump.join()
        if rc != 0:
            reason = failure.read_text() if failure.exists() else f"exit code {rc}"
            failures.append((index, reason))
    if failures:
        index, reason = failures[0]
        named = reason.replace("ClientError: ", f"ClientError: instance {index}: ", 1)
        _failure_path(config).write_text(named)
        print(f"instance {index} failed: {reason}", file=sys.stderr, flush=True)
        return 1
    return 0


def _prefix_lines(proc: subprocess.Popen[bytes], prefix: str) -> None:
    assert proc.stdout is not None
    for raw in iter(proc.stdout.readline, b""):
        sys.stdout.write(prefix + raw.decode("utf-8", "replace"))
        sys.stdout.flush()


def main(argv: list[str]) -> int:
    config_path = Path(argv[1])
    config = json.loads(config_path.read_text())
    failure = _failure_path(config)
    if int(config.get("instance_count", 1)) > 1:
        return run_instances(config, config_path)
    try:
        run(config)
    except TransformError as exc:
        failure.write_text(str(exc))
        print(str(exc), file=sys.stderr, flush=True)
        return 1
    except Exception as exc:  # the handler's own error: SageMaker shows the model server's message
        message = f"ClientError: the model server failed: {type(exc).__name__}: {exc}"
        failure.write_text(message)
        import traceback

        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
