"""Persistence of the local stack under `--state-dir` (default `.local/`).

Layout:
    lock                    flock held by the process that owns the state (one at a time)
    bucket/<key>            the bucket's objects, one file each (plus manifest.json: key -> ETag)
    registry.json           every item of the registry table (DynamoDB JSON, binary base64)
    sagemaker.json          job names already used and models created (names stay taken)
    executions/<name>.json  each finished execution: status, input, output, error, cause, events
    jobs/<job>/             the local jobs' working directories and logs
    bundle/<hash>/          the built code bundle, cached by the content hash of pipelines/
    artifacts/<run>/        files copied out for the user (predictions, reports)
    logs/<execution>.traceback.log  its failed handlers' tracebacks (appended; the terminal shows one line)
    logs/cloudwatch.jsonl   the jobs' and handlers' lines as CloudWatch Logs events (the AWS endpoint's)
    sagemaker_jobs.json     every finished job's Describe* document (the AWS endpoint's SageMaker reads)

Everything else is written with a temporary file + rename, so a crash never leaves half a file.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError, FlexibleChecksumError

from emulator.objects import put_file

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STATE_DIR = PROJECT_ROOT / ".local"  # git-ignored


class StateLockedError(RuntimeError):
    """Another process is using the same state directory."""


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return {"__bytes__": base64.b64encode(value).decode()}
    raise TypeError(f"cannot store {type(value).__name__}")


def _decode_bytes(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__bytes__"}:
            return base64.b64decode(value["__bytes__"])
        return {k: _decode_bytes(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode_bytes(v) for v in value]
    return value


class StateSaveError(RuntimeError):
    """An object could not be copied out of the local bucket into the state directory."""


class StateDir:
    """One state directory. Use as a context manager: it takes the lock for its lifetime."""

    def __init__(self, root: Path, wait_seconds: float = 0.0):
        self.root = Path(root)
        self.wait_seconds = wait_seconds
        self._lock_file: Any = None

    # ---- lock -------------------------------------------------------------------------------------
    def __enter__(self) -> StateDir:
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(self.root / "lock", "a+")
        deadline = time.monotonic() + self.wait_seconds
        while True:
            try:
                fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    self._lock_file.close()
                    self._lock_file = None
                    raise StateLockedError(
                        f"{self.root} is in use by another local runtime "
                        "(wait for it, or pass another --state-dir)"
                    ) from None
                time.sleep(0.2)
        return self

    def __exit__(self, *_: Any) -> None:
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    # ---- paths ---------------------------------------------------------------------------------------
    @property
    def jobs_dir(self) -> Path:
        return self.root / "jobs"

    @property
    def bundle_dir(self) -> Path:
        return self.root / "bundle"

    def artifacts_dir(self, run_id: str) -> Path:
        return self.root / "artifacts" / run_id

    # ---- bucket ----------------------------------------------------------------------------------------
    def save_bucket(self, bucket: str) -> None:
        """Mirror the bucket into bucket/ (only changed objects are rewritten)."""
        s3 = boto3.client("s3")
        base = self.root / "bucket"
        manifest_path = base / "manifest.json"
        old = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
        new: dict[str, str] = {}
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                key, etag = obj["Key"], obj["ETag"]
                new[key] = etag
                target = base / "objects" / key
                if old.get(key) != etag or not target.exists():
                    try:
                        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                    except (ClientError, FlexibleChecksumError) as exc:
                        # the execution's own result is already printed; say what was not saved
                        raise StateSaveError(
                            f"could not save s3://{bucket}/{key} to {target}: {exc}; the state directory "
                            "keeps its previous copy"
                        ) from exc
                    _atomic_write(target, body)
        for key in set(old) - set(new):
            (base / "objects" / key).unlink(missing_ok=True)
        _atomic_write(manifest_path, json.dumps(new, indent=0, sort_keys=True).encode())

    def load_bucket(self, bucket: str) -> int:
        base = self.root / "bucket"
        manifest_path = base / "manifest.json"
        if not manifest_path.exists():
            return 0
        s3 = boto3.client("s3")
        keys = json.loads(manifest_path.read_text())
        for key in keys:
            path = base / "objects" / key
            if path.exists():
                put_file(s3, path, bucket, key)
        return len(keys)

    # ---- registry table ---------------------------------------------------------------------------------
    def save_table(self, table: str) -> None:
        client = boto3.client("dynamodb")
        items = []
        for page in client.get_paginator("scan").paginate(TableName=table):
            items.extend(page.get("Items", []))
        _atomic_write(
            self.root / "registry.json", json.dumps(items, default=_json_default, indent=1).encode()
        )

    def load_table(self, table: str) -> int:
        path = self.root / "registry.json"
        if not path.exists():
            return 0
        client = boto3.client("dynamodb")
        items = _decode_bytes(json.loads(path.read_text()))
        for item in items:
            client.put_item(TableName=table, Item=item)
        return len(items)

    # ---- small JSON documents ----------------------------------------------------------------------------
    def read_json(self, name: str, default: Any = None) -> Any:
        path = self.root / name
        return json.loads(path.read_text()) if path.exists() else default

    def write_json(self, name: str, value: Any) -> None:
        _atomic_write(self.root / name, json.dumps(value, default=_json_default, indent=1).encode())

    # ---- executions ----------------------------------------------------------------------------------------
    def save_execution(self, record: dict[str, Any]) -> None:
        self.write_json(f"executions/{record['name']}.json", record)

    def executions(self) -> Iterator[dict[str, Any]]:
        """Every recorded execution, oldest first."""
        folder = self.root / "executions"
        records = [json.loads(p.read_text()) for p in folder.glob("*.json")] if folder.exists() else []
        yield from sorted(records, key=lambda r: str(r.get("startDate", "")))

    def execution(self, name: str) -> dict[str, Any] | None:
        """One execution by name (one file read) or by ARN (a scan of the records)."""
        path = self.root / "executions" / f"{name}.json"
        if "/" not in name and path.is_file():
            return dict(json.loads(path.read_text()))
        for record in self.executions():
            if name in (record.get("name"), record.get("executionArn")):
                return record
        return None

    def reset_jobs_dir(self) -> None:
        if self.jobs_dir.exists():
            shutil.rmtree(self.jobs_dir)
        self.jobs_dir.mkdir(parents=True)
