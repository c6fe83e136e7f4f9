"""The batch-transform host: the local stand-in for the scikit-learn container's model server.

Run as a script by `emulator.sagemaker` (`python serving.py <config.json>`), in the job's own
process with no AWS access. It does what SageMaker's batch transform does around the serving
handlers of the model's `SAGEMAKER_PROGRAM`: `model_fn(model_dir)` once, then for every input file
cut the file into requests (`SplitType`, `BatchStrategy`, `MaxPayloadInMB`), decompress Gzip,
call `input_fn -> predict_fn -> output_fn` per request and write `<file>.out` (responses joined by
newlines under `AssembleWith: Line`). Standard library only: it must not depend on the emulator.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MB = 1024 * 1024


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


def _requests(data: bytes, config: dict[str, Any]) -> Iterator[bytes]:
    """Cut one (decompressed) input file into request payloads, as the transform agent does."""
    limit = config["max_payload_mb"] * MB
    split = config["split_type"]
    if split in (None, "None"):
        if limit and len(data) > limit:
            raise TransformError(
                f"ClientError: Too much data for max payload size: the record of {len(data)} bytes exceeds "
                f"MaxPayloadInMB={config['max_payload_mb']:g}. Use SplitType Line or raise MaxPayloadInMB."
            )
        yield data
        return
    if split != "Line":
        raise TransformError(f"ClientError: SplitType {split} is not supported locally (None or Line)")
    lines = [line + b"\n" for line in data.splitlines() if line.strip()]
    if config["batch_strategy"] == "SingleRecord":
        for line in lines:
            if limit and len(line) > limit:
                raise TransformError(
                    "ClientError: Too much data for max payload size: a single record exceeds it"
                )
            yield line
        return
    batch: list[bytes] = []
    size = 0
    for line in lines:
        if limit and len(line) > limit:
            raise TransformError(
                "ClientError: Too much data for max payload size: a single record exceeds it"
            )
        if batch and size + len(line) > limit:
            yield b"".join(batch)
            batch, size = [], 0
        batch.append(line)
        size += len(line)
    if batch:
        yield b"".join(batch)


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


def run(config: dict[str, Any]) -> None:
    module = _load_program(Path(config["code_dir"]), config["program"])
    started = time.monotonic()
    model = module.model_fn(config["model_dir"])
    print(f"model_fn loaded the model in {time.monotonic() - started:.2f} s", flush=True)
    accept = config.get("accept") or config["content_type"]
    input_root, output_root = Path(config["input_root"]), Path(config["output_root"])
    for name in config["inputs"]:
        path = Path(name)
        data = path.read_bytes()
        if config["compression"] == "Gzip":
            try:
                data = gzip.decompress(data)
            except OSError as exc:
                raise TransformError(f"ClientError: {path.name} is not valid Gzip: {exc}") from exc
        responses = [
            _invoke(module, model, payload, config["content_type"], accept)
            for payload in _requests(data, config)
        ]
        joiner = b"\n" if config["assemble_with"] == "Line" else b""
        body = joiner.join(r.rstrip(b"\n") if joiner else r for r in responses)
        if joiner and body:
            body += b"\n"
        target = output_root / (str(path.relative_to(input_root)) + ".out")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
        print(f"{path.name}: {len(responses)} request(s) -> {target.name} ({len(body)} bytes)", flush=True)


def main(argv: list[str]) -> int:
    config = json.loads(Path(argv[1]).read_text())
    failure = Path(config["output_root"]).parent / "failure"
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
