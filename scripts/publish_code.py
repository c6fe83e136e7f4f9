"""Publish the SageMaker code bundle to `s3://<bucket>/code/`: the last step of scripts/deploy.sh.

The bundle (`python -m pipelines.bundle --out build/code`, docs/architecture.md "Code bundle") must
reach the stack's bucket before a run starts: training reads `code/sourcedir.tar.gz`, the drift job
`code/src/`, ValidateDataset `code/dataset_schema.json`. This is `aws s3 sync --delete` with checks:
an incomplete bundle uploads nothing, and objects left from an older bundle are removed (a stale
module in `code/src/` would otherwise be imported by the drift job). The bucket is versioned, so an
overwritten or deleted object stays recoverable.

    python scripts/publish_code.py --config-env dev            # bucket from the stack's outputs
    python scripts/publish_code.py --bucket NAME               # or name it
"""

from __future__ import annotations

import argparse
import mimetypes
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CODE_PREFIX = "code/"
# The files the state machine and the jobs name directly (docs/architecture.md).
REQUIRED_FILES = (
    "sourcedir.tar.gz",
    "dataset_schema.json",
    "src/drift.py",
    "src/inference.py",
    "src/train.py",
)
# Upload order: the unpacked tree, then the archive, then the schema. A run that starts mid-publish
# sees the old schema with either bundle, never a schema newer than the code that reads datasets.
_ORDER = ("src/", "sourcedir.tar.gz", "")


class PublishError(Exception):
    """The bundle or the target cannot be published; the message says what to do."""


@dataclass
class Published:
    bucket: str
    uploaded: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


def bundle_files(bundle_dir: Path) -> dict[str, Path]:
    """Bundle-relative POSIX path -> file, for every file under `bundle_dir`; PublishError when a
    contract file is missing (an empty or half-built directory must not replace a working bundle)."""
    if not bundle_dir.is_dir():
        raise PublishError(
            f"{bundle_dir} does not exist: run `python -m pipelines.bundle --out {bundle_dir}` first"
        )
    files = {
        path.relative_to(bundle_dir).as_posix(): path for path in bundle_dir.rglob("*") if path.is_file()
    }
    files = {name: path for name, path in files.items() if "__pycache__" not in name.split("/")}
    missing = [name for name in REQUIRED_FILES if name not in files]
    if missing:
        raise PublishError(f"{bundle_dir} is not a complete code bundle: missing {', '.join(missing)}")
    return files


def _upload_rank(name: str) -> tuple[int, str]:
    rank = next(i for i, prefix in enumerate(_ORDER) if name.startswith(prefix))
    return (rank if name != "dataset_schema.json" else len(_ORDER), name)


def _existing_keys(s3: Any, bucket: str, prefix: str) -> set[str]:
    keys: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.update(item["Key"] for item in page.get("Contents", []))
    return keys


def publish(bundle_dir: Path, bucket: str, s3: Any, prefix: str = CODE_PREFIX) -> Published:
    """Upload the bundle under `prefix` and delete what an older bundle left there."""
    files = bundle_files(bundle_dir)
    stale = _existing_keys(s3, bucket, prefix) - {prefix + name for name in files}
    result = Published(bucket=bucket)
    for name in sorted(files, key=_upload_rank):
        content_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if name.endswith(".py"):
            content_type = "text/x-python"
        s3.upload_file(str(files[name]), bucket, prefix + name, ExtraArgs={"ContentType": content_type})
        result.uploaded.append(prefix + name)
    for key in sorted(stale):
        s3.delete_object(Bucket=bucket, Key=key)
        result.deleted.append(key)
    return result


def samconfig_target(env: str, samconfig: Path = REPO / "samconfig.toml") -> tuple[str, str | None]:
    """(stack name, region or None) of a samconfig.toml environment."""
    config = tomllib.loads(samconfig.read_text())
    if env not in config:
        known = ", ".join(k for k in config if k != "version")
        raise PublishError(f"{samconfig.name} has no environment {env!r} (it has: {known})")
    merged: dict[str, Any] = {}
    for command in ("global", "deploy"):
        merged.update(config[env].get(command, {}).get("parameters", {}))
    if "stack_name" not in merged:
        raise PublishError(f"{samconfig.name} [{env}] names no stack_name")
    return merged["stack_name"], merged.get("region")


def stack_bucket(cloudformation: Any, stack_name: str) -> str:
    """The stack's `BucketName` output."""
    try:
        (stack,) = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except cloudformation.exceptions.ClientError as exc:
        raise PublishError(
            f"stack {stack_name} not found ({exc}); deploy it first (scripts/deploy.sh)"
        ) from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    if "BucketName" not in outputs:
        raise PublishError(f"stack {stack_name} ({stack['StackStatus']}) has no BucketName output")
    return outputs["BucketName"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Upload the SageMaker code bundle to s3://<bucket>/code/.")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--config-env", help="samconfig.toml environment whose stack's bucket receives the code"
    )
    target.add_argument("--stack-name", help="stack whose BucketName output receives the code")
    target.add_argument("--bucket", help="bucket name")
    parser.add_argument("--bundle-dir", type=Path, default=REPO / "build" / "code")
    parser.add_argument(
        "--region", help="AWS region (default: the samconfig environment's, else your profile's)"
    )
    args = parser.parse_args(argv)

    import boto3  # imported here so --help and the tests of the pure parts need no AWS SDK set-up

    try:
        region = args.region
        stack_name = args.stack_name
        if args.config_env:
            stack_name, config_region = samconfig_target(args.config_env)
            region = region or config_region
        session = boto3.session.Session(region_name=region)
        bucket = args.bucket or stack_bucket(session.client("cloudformation"), stack_name)
        result = publish(args.bundle_dir, bucket, session.client("s3"))
    except PublishError as exc:
        print(f"publish_code: {exc}", file=sys.stderr)
        return 2
    uploaded, deleted = len(result.uploaded), len(result.deleted)
    print(f"published {uploaded} files to s3://{bucket}/{CODE_PREFIX}, removed {deleted} stale")
    return 0


if __name__ == "__main__":
    sys.exit(main())
