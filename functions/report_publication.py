"""Publish a trained version's report where a person opens it: `s3://<bucket>/reports/<model>/v<N>/`.

The training job writes its report (report.md, the plots, and whatever else pipelines/train.py puts in
SM_OUTPUT_DATA_DIR) to `/opt/ml/output/data`, which SageMaker packs into `output.tar.gz` beside
`model.tar.gz` (`<S3OutputPath>/<job>/output/`). Inside a tarball nobody opens it from the console, so
RegisterModel, once it knows the version number, copies each regular file of that archive to the
version's own prefix with the content type a browser or the S3 console shows it by.

The archive is the training job's output, i.e. produced by code that reads user data: it is read
with the same distrust as any upload. Every member is checked before anything is written, and an
absolute path, a `..` component, a link or a device refuses the whole archive with the member's name.

A version number is never reused (registry.allocate_version), so a report prefix is written once.
Each object is still put with `IfNoneMatch: *` (S3 answers 412 when the key exists, atomically), so
no bug can overwrite another version's report; the one existing object accepted is the identical one
this same run wrote before (a retried RegisterModel), recognised by its `run-id` and `sha256` metadata.
"""

from __future__ import annotations

import hashlib
import io
import posixpath
import re
import tarfile
from dataclasses import dataclass
from typing import Any

from errors import ReportNotPublished
from s3uri import S3Uri, is_missing_code, parse_s3_uri

REPORTS_PREFIX = "reports/"
# The archive is read whole into the function's memory (512 MB): a report is a few MB of text and PNGs.
MAX_ARCHIVE_BYTES = 64 * 1024 * 1024
MAX_REPORT_BYTES = 128 * 1024 * 1024  # all members unpacked (a gzip bomb is refused from the headers)
MAX_MEMBERS = 1000
CONTENT_TYPES = {
    ".md": "text/markdown; charset=utf-8",
    ".png": "image/png",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".csv": "text/csv; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".svg": "image/svg+xml",
}
DEFAULT_CONTENT_TYPE = "application/octet-stream"


@dataclass(frozen=True)
class ReportFile:
    """One regular file of the archive: its path under the report prefix and its bytes."""

    name: str
    body: bytes

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES.get(posixpath.splitext(self.name)[1].lower(), DEFAULT_CONTENT_TYPE)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()


def training_output_uri(artifact_uri: str) -> str:
    """`output.tar.gz` of the job whose `ModelArtifacts.S3ModelArtifacts` is `artifact_uri`: SageMaker
    writes both into `<S3OutputPath>/<TrainingJobName>/output/` (the only place the workflow's
    TrainModel result names; DescribeTrainingJob's OutputDataConfig is not a member botocore marks
    required, so the ASL does not select it)."""
    if not artifact_uri.endswith("/output/model.tar.gz"):
        raise ReportNotPublished(
            f"the model artifact {artifact_uri} is not a training job's <S3OutputPath>/<job>/output/"
            "model.tar.gz, so there is no output.tar.gz beside it to publish the report from."
        )
    return artifact_uri[: -len("model.tar.gz")] + "output.tar.gz"


def report_prefix(bucket: str, model_name: str, version: int) -> S3Uri:
    """Where version `version` of `model_name` keeps its report (a prefix, ending in `/`)."""
    return S3Uri(bucket, f"{REPORTS_PREFIX}{model_name}/v{version}/")


def _error_code(exc: Any) -> str:
    return str((getattr(exc, "response", None) or {}).get("Error", {}).get("Code") or "unknown")


def _said(exc: Any) -> str:
    """S3's own message in parentheses, when it gave one (an AccessDenied names the role and action)."""
    message = str((getattr(exc, "response", None) or {}).get("Error", {}).get("Message") or "")
    return f" ({message})" if message else ""


def read_archive(s3: Any, uri: str, *, job_name: str) -> bytes:
    """The bytes of `output.tar.gz`; a missing, refused or oversized one is a ReportNotPublished."""
    location = parse_s3_uri(uri)
    try:
        response = s3.get_object(Bucket=location.bucket, Key=location.key)
    except s3.exceptions.ClientError as exc:
        code = _error_code(exc)
        if is_missing_code(code):
            raise ReportNotPublished(
                f"the training job {job_name} left no output.tar.gz at {uri} (S3 error {code}): the job "
                "wrote no report to SM_OUTPUT_DATA_DIR, so there is none to publish."
            ) from None
        if code in ("AccessDenied", "403"):
            raise ReportNotPublished(
                f"reading the training output {uri} was refused (S3 error {code}): the function's role "
                "lacks s3:GetObject on it, so the report was not published."
            ) from None
        raise ReportNotPublished(
            f"reading the training output {uri} failed with S3 error {code}{_said(exc)}."
        ) from None
    size = int(response.get("ContentLength") or 0)
    if size > MAX_ARCHIVE_BYTES:
        response["Body"].close()
        raise ReportNotPublished(
            f"the training output {uri} is {size} bytes, more than the {MAX_ARCHIVE_BYTES} a report "
            "archive may be; it was not published."
        )
    return bytes(response["Body"].read())


def _unsafe(member: tarfile.TarInfo) -> str | None:
    """Why `member` may not be published (None when it is a plain file or directory inside the
    archive). Checked on the raw header, before any normalisation could hide a `..`."""
    name = member.name
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:[\\/]", name):
        return "its path is absolute"
    if ".." in name.replace("\\", "/").split("/"):
        return "its path climbs out of the report with '..'"
    if member.issym():
        return f"it is a symbolic link (to {member.linkname!r})"
    if member.islnk():
        return f"it is a hard link (to {member.linkname!r})"
    if member.ischr() or member.isblk():
        return "it is a device file"
    if member.isfifo():
        return "it is a FIFO"
    if not (member.isfile() or member.isdir()):
        return f"it is not a regular file (tar type {member.type!r})"
    return None


def report_files(archive: bytes, *, uri: str) -> list[ReportFile]:
    """The regular files of the archive, every member checked first (nothing is returned, and so
    nothing is written, when one is unsafe)."""
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            members = tar.getmembers()
            if len(members) > MAX_MEMBERS:
                raise ReportNotPublished(
                    f"the training output {uri} holds {len(members)} members, more than the {MAX_MEMBERS} "
                    "a report may have; nothing was published."
                )
            total = 0
            for member in members:
                reason = _unsafe(member)
                if reason is not None:
                    raise ReportNotPublished(
                        f"the training output {uri} holds the member {member.name!r}, which is refused "
                        f"because {reason}; nothing was published."
                    )
                total += member.size if member.isfile() else 0
            if total > MAX_REPORT_BYTES:
                raise ReportNotPublished(
                    f"the training output {uri} unpacks to {total} bytes, more than the {MAX_REPORT_BYTES} "
                    "a report may be; nothing was published."
                )
            files = []
            for member in members:
                if not member.isfile():
                    continue
                name = posixpath.normpath(member.name).lstrip("/")
                handle = tar.extractfile(member)
                if handle is None or not name or name == ".":
                    continue
                files.append(ReportFile(name, handle.read()))
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ReportNotPublished(
            f"the training output {uri} is not a readable tar.gz archive ({type(exc).__name__}: {exc}); "
            "nothing was published."
        ) from None
    if not files:
        raise ReportNotPublished(f"the training output {uri} holds no file; there is no report to publish.")
    return sorted(files, key=lambda f: f.name)


def _put_once(s3: Any, target: S3Uri, item: ReportFile, *, run_id: str) -> None:
    """Put one object unless its key exists; an existing key is accepted only when it is this run's
    identical object (a retry), else the report is not overwritten and the run fails saying so."""
    try:
        s3.put_object(
            Bucket=target.bucket,
            Key=target.key,
            Body=item.body,
            ContentType=item.content_type,
            IfNoneMatch="*",
            Metadata={"run-id": run_id, "sha256": item.sha256},
        )
        return
    except s3.exceptions.ClientError as exc:
        code = _error_code(exc)
        if code not in ("PreconditionFailed", "412"):
            raise ReportNotPublished(
                f"writing the report object {target} failed with S3 error {code}{_said(exc)}; the report "
                "is incomplete."
            ) from None
    try:
        existing = s3.head_object(Bucket=target.bucket, Key=target.key).get("Metadata") or {}
    except s3.exceptions.ClientError as exc:
        raise ReportNotPublished(
            f"the report object {target} already exists and reading it to compare failed with S3 error "
            f"{_error_code(exc)}; it was not overwritten."
        ) from None
    if existing.get("run-id") == run_id and existing.get("sha256") == item.sha256:
        return
    raise ReportNotPublished(
        f"the report object {target} already exists (written by run {existing.get('run-id') or 'unknown'}); "
        "a version's report is never overwritten, so this run's report was not published."
    )


def publish_report(
    s3: Any,
    *,
    artifact_uri: str,
    job_name: str,
    bucket: str,
    model_name: str,
    version: int,
    run_id: str,
) -> str:
    """Copy the report out of the job's output.tar.gz to the version's prefix; return the prefix URI."""
    source = training_output_uri(artifact_uri)
    files = report_files(read_archive(s3, source, job_name=job_name), uri=source)
    prefix = report_prefix(bucket, model_name, version)
    for item in files:
        _put_once(s3, S3Uri(prefix.bucket, prefix.key + item.name), item, run_id=run_id)
    return str(prefix)
