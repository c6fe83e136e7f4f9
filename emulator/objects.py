"""Files to and from the local bucket, one request each.

boto3's `upload_file`/`download_file` start a transfer manager (a thread pool) per call: tens of
milliseconds per file, paid for every staged input, code file and output of every job, for
nothing, since moto answers in-process. Internal copies (staging, outputs, the code bundle, the
state directory) use these; user-facing uploads (`run --dataset`, `put_file`) keep
`upload_file`, so the object and its event look like the CLI's upload (multipart above 8 MiB).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any


def put_file(s3: Any, path: Path, bucket: str, key: str) -> None:
    """PutObject with the file's bytes."""
    with open(path, "rb") as body:
        s3.put_object(Bucket=bucket, Key=key, Body=body)


def get_file(s3: Any, bucket: str, key: str, path: Path) -> None:
    """GetObject into path (written through a temporary name: never half a file under path)."""
    tmp = path.with_name(f".{path.name}.part")
    body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        with open(tmp, "wb") as out:
            shutil.copyfileobj(body, out, 1 << 20)
        tmp.replace(path)
    finally:
        body.close()
        tmp.unlink(missing_ok=True)
