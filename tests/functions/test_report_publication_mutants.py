"""The report publication's refusals and messages (functions/report_publication.py), pinned exactly
against recording fakes (issue 14): the sentence a failed RegisterModel records is what the user
reads, so the S3 code, S3's own message, the limits and the member checks are asserted word for word."""

from __future__ import annotations

import io
import tarfile
from typing import Any

import pytest
from botocore.exceptions import ClientError

import report_publication as rp
from errors import ReportNotPublished

URI = "s3://bucket/runs/r/output/output.tar.gz"


def _error(code: str, message: str | None = None) -> ClientError:
    error: dict[str, str] = {"Code": code}
    if message is not None:
        error["Message"] = message
    return ClientError({"Error": error}, "Op")


class _Body(io.BytesIO):
    def __init__(self, data: bytes):
        super().__init__(data)
        self.was_closed = False

    def close(self) -> None:
        self.was_closed = True
        super().close()


class _S3:
    class exceptions:  # boto3's spelling
        ClientError = ClientError

    def __init__(
        self,
        *,
        get: Exception | dict[str, Any] | None = None,
        put: list[Exception | None] | None = None,
        head: Exception | dict[str, Any] | None = None,
    ):
        self.get, self.put, self.head = get, list(put or []), head
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def get_object(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("get_object", kwargs))
        if isinstance(self.get, Exception):
            raise self.get
        return self.get or {}

    def put_object(self, **kwargs: Any) -> None:
        self.calls.append(("put_object", kwargs))
        outcome = self.put.pop(0) if self.put else None
        if outcome is not None:
            raise outcome

    def head_object(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("head_object", kwargs))
        if isinstance(self.head, Exception):
            raise self.head
        return self.head or {}


def _archive(members: list[tuple[str, bytes, bytes]]) -> bytes:
    """(name, tar type, body) members in a tar.gz."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, kind, body in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.size = len(body) if kind == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(body) if kind == tarfile.REGTYPE else None)
    return buffer.getvalue()


# ---- _error_code, _said -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "code", "said"),
    [
        (_error("AccessDenied", "User x is not authorized"), "AccessDenied", " (User x is not authorized)"),
        (_error("SlowDown", ""), "SlowDown", ""),
        (_error("SlowDown"), "SlowDown", ""),
        (_error(""), "unknown", ""),
        (RuntimeError("no response"), "unknown", ""),
    ],
)
def test_an_s3_error_is_its_code_and_its_own_message_in_parentheses(
    exc: Exception, code: str, said: str
) -> None:
    assert rp._error_code(exc) == code
    assert rp._said(exc) == said


def test_an_error_whose_response_is_none_has_no_code_and_says_nothing() -> None:
    class Bare(Exception):
        response = None

    assert rp._error_code(Bare()) == "unknown"
    assert rp._said(Bare()) == ""


def test_an_error_without_an_error_member_has_no_code_and_says_nothing() -> None:
    class Odd(Exception):
        response: dict[str, Any] = {"ResponseMetadata": {}}

    assert rp._error_code(Odd()) == "unknown"
    assert rp._said(Odd()) == ""


# ---- training_output_uri, report_prefix ---------------------------------------------------------


def test_the_output_archive_is_beside_the_model_archive() -> None:
    assert rp.training_output_uri("s3://b/j/output/model.tar.gz") == "s3://b/j/output/output.tar.gz"
    assert str(rp.report_prefix("b", "m", 7)) == "s3://b/reports/m/v7/"


def test_a_model_archive_elsewhere_has_no_output_archive_in_words() -> None:
    with pytest.raises(ReportNotPublished) as raised:
        rp.training_output_uri("s3://b/j/model.tar.gz")

    assert str(raised.value) == (
        "the model artifact s3://b/j/model.tar.gz is not a training job's <S3OutputPath>/<job>/output/"
        "model.tar.gz, so there is no output.tar.gz beside it to publish the report from."
    )


# ---- read_archive -------------------------------------------------------------------------------


@pytest.mark.parametrize("code", ["NoSuchKey", "404"])
def test_a_missing_archive_says_the_job_wrote_no_report(code: str) -> None:
    s3 = _S3(get=_error(code, "gone"))

    with pytest.raises(ReportNotPublished) as raised:
        rp.read_archive(s3, URI, job_name="job-1")

    assert str(raised.value) == (
        f"the training job job-1 left no output.tar.gz at {URI} (S3 error {code}): the job wrote no report "
        "to SM_OUTPUT_DATA_DIR, so there is none to publish."
    )
    assert s3.calls == [("get_object", {"Bucket": "bucket", "Key": "runs/r/output/output.tar.gz"})]


@pytest.mark.parametrize("code", ["AccessDenied", "403"])
def test_a_refused_read_says_the_role_lacks_get_object(code: str) -> None:
    with pytest.raises(ReportNotPublished) as raised:
        rp.read_archive(_S3(get=_error(code, "denied")), URI, job_name="job-1")

    assert str(raised.value) == (
        f"reading the training output {URI} was refused (S3 error {code}): the function's role lacks "
        "s3:GetObject on it, so the report was not published."
    )


def test_another_read_error_quotes_s3s_code_and_message() -> None:
    with pytest.raises(ReportNotPublished) as raised:
        rp.read_archive(_S3(get=_error("SlowDown", "Reduce your request rate.")), URI, job_name="job-1")

    assert str(raised.value) == (
        f"reading the training output {URI} failed with S3 error SlowDown (Reduce your request rate.)."
    )


def test_an_archive_of_exactly_the_limit_is_read_and_a_byte_more_is_refused_unread() -> None:
    fits = _Body(b"data")
    assert (
        rp.read_archive(_S3(get={"ContentLength": 64 * 1024 * 1024, "Body": fits}), URI, job_name="j")
        == b"data"
    )

    too_big = _Body(b"data")
    with pytest.raises(ReportNotPublished) as raised:
        rp.read_archive(_S3(get={"ContentLength": 64 * 1024 * 1024 + 1, "Body": too_big}), URI, job_name="j")

    assert str(raised.value) == (
        f"the training output {URI} is 67108865 bytes, more than the 67108864 a report archive may be; "
        "it was not published."
    )
    assert too_big.was_closed


def test_an_archive_without_a_length_is_read() -> None:
    assert rp.read_archive(_S3(get={"Body": _Body(b"x")}), URI, job_name="j") == b"x"


# ---- _unsafe, report_files ----------------------------------------------------------------------


def _info(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    return info


@pytest.mark.parametrize(
    ("info", "reason"),
    [
        (_info("/etc/passwd"), "its path is absolute"),
        (_info("\\windows"), "its path is absolute"),
        (_info("C:\\x"), "its path is absolute"),
        (_info("c:/x"), "its path is absolute"),
        (_info("a/../../x"), "its path climbs out of the report with '..'"),
        (_info("a\\..\\x"), "its path climbs out of the report with '..'"),
        (_info("s", tarfile.SYMTYPE, "/etc"), "it is a symbolic link (to '/etc')"),
        (_info("h", tarfile.LNKTYPE, "t"), "it is a hard link (to 't')"),
        (_info("c", tarfile.CHRTYPE), "it is a device file"),
        (_info("b", tarfile.BLKTYPE), "it is a device file"),
        (_info("f", tarfile.FIFOTYPE), "it is a FIFO"),
        (_info("g", b"V"), "it is not a regular file (tar type b'V')"),
        (_info("a..b/x.md"), None),
        (_info("ab:/x"), None),
        (_info("d", tarfile.DIRTYPE), None),
    ],
)
def test_each_unsafe_member_is_refused_with_its_reason(info: tarfile.TarInfo, reason: str | None) -> None:
    assert rp._unsafe(info) == reason


def test_the_report_is_its_regular_files_sorted_with_normalised_names() -> None:
    archive = _archive(
        [
            ("./report.md", tarfile.REGTYPE, b"r"),
            ("plots", tarfile.DIRTYPE, b""),
            ("plots//b.png", tarfile.REGTYPE, b"b"),
            ("a.txt", tarfile.REGTYPE, b""),
        ]
    )

    files = rp.report_files(archive, uri=URI)

    assert [(f.name, f.body, f.content_type) for f in files] == [
        ("a.txt", b"", "text/plain; charset=utf-8"),
        ("plots/b.png", b"b", "image/png"),
        ("report.md", b"r", "text/markdown; charset=utf-8"),
    ]


def test_an_archive_with_only_folders_holds_no_report() -> None:
    with pytest.raises(ReportNotPublished) as raised:
        rp.report_files(_archive([("plots", tarfile.DIRTYPE, b"")]), uri=URI)

    assert str(raised.value) == f"the training output {URI} holds no file; there is no report to publish."


def test_an_unsafe_member_refuses_the_archive_naming_it() -> None:
    archive = _archive([("ok.md", tarfile.REGTYPE, b"x"), ("link", tarfile.SYMTYPE, b"")])

    with pytest.raises(ReportNotPublished) as raised:
        rp.report_files(archive, uri=URI)

    assert str(raised.value) == (
        f"the training output {URI} holds the member 'link', which is refused because it is a symbolic "
        "link (to ''); nothing was published."
    )


def test_an_archive_of_exactly_the_member_limit_is_read_and_one_more_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rp, "MAX_MEMBERS", 2)
    assert [f.name for f in rp.report_files(_archive([("a", b"0", b"1"), ("b", b"0", b"2")]), uri=URI)] == [
        "a",
        "b",
    ]

    with pytest.raises(ReportNotPublished) as raised:
        rp.report_files(_archive([("a", b"0", b"1"), ("b", b"0", b"2"), ("c", b"0", b"3")]), uri=URI)

    assert str(raised.value) == (
        f"the training output {URI} holds 3 members, more than the 2 a report may have; "
        "nothing was published."
    )


def test_an_archive_unpacking_past_the_size_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The unpacked size counts regular files only, and exactly the limit is allowed."""
    monkeypatch.setattr(rp, "MAX_REPORT_BYTES", 4)
    fits = _archive(
        [("a", tarfile.REGTYPE, b"12"), ("d", tarfile.DIRTYPE, b""), ("b", tarfile.REGTYPE, b"34")]
    )
    assert [f.body for f in rp.report_files(fits, uri=URI)] == [b"12", b"34"]

    with pytest.raises(ReportNotPublished) as raised:
        rp.report_files(_archive([("a", tarfile.REGTYPE, b"12"), ("b", tarfile.REGTYPE, b"345")]), uri=URI)

    assert str(raised.value) == (
        f"the training output {URI} unpacks to 5 bytes, more than the 4 a report may be; "
        "nothing was published."
    )


def test_bytes_that_are_not_a_tar_gz_are_said_to_be_unreadable() -> None:
    with pytest.raises(ReportNotPublished) as raised:
        rp.report_files(b"not an archive", uri=URI)

    assert str(raised.value) == (
        f"the training output {URI} is not a readable tar.gz archive (ReadError: not a gzip file); "
        "nothing was published."
    )


@pytest.mark.parametrize("name", [".", "./", "./."])
def test_a_regular_member_naming_the_archives_own_folder_is_not_a_report_file(name: str) -> None:
    """A regular-file header named "." (some tar writers emit one for the root) names no file:
    published, it would be an object whose key ends in the prefix's "/." - skipped, not refused."""
    archive = _archive([(name, tarfile.REGTYPE, b"root"), ("report.md", tarfile.REGTYPE, b"r")])

    assert [(f.name, f.body) for f in rp.report_files(archive, uri=URI)] == [("report.md", b"r")]


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("a.JSON", "application/json"),
        ("a.csv", "text/csv; charset=utf-8"),
        ("a.html", "text/html; charset=utf-8"),
        ("a.svg", "image/svg+xml"),
        ("a.bin", "application/octet-stream"),
    ],
)
def test_each_report_file_has_the_content_type_a_browser_shows_it_by(name: str, content_type: str) -> None:
    assert rp.ReportFile(name, b"").content_type == content_type


# ---- _put_once ----------------------------------------------------------------------------------

TARGET = rp.S3Uri("bucket", "reports/m/v1/report.md")
ITEM = rp.ReportFile("report.md", b"r")
SHA = ITEM.sha256


def test_an_object_is_put_only_if_none_exists_with_the_runs_metadata() -> None:
    s3 = _S3()

    rp._put_once(s3, TARGET, ITEM, run_id="run-1")

    assert s3.calls == [
        (
            "put_object",
            {
                "Bucket": "bucket",
                "Key": "reports/m/v1/report.md",
                "Body": b"r",
                "ContentType": "text/markdown; charset=utf-8",
                "IfNoneMatch": "*",
                "Metadata": {"run-id": "run-1", "sha256": SHA},
            },
        )
    ]


@pytest.mark.parametrize("code", ["PreconditionFailed", "412"])
def test_the_same_runs_identical_object_is_accepted_on_a_retry(code: str) -> None:
    s3 = _S3(put=[_error(code)], head={"Metadata": {"run-id": "run-1", "sha256": SHA}})

    rp._put_once(s3, TARGET, ITEM, run_id="run-1")

    assert s3.calls[-1] == ("head_object", {"Bucket": "bucket", "Key": "reports/m/v1/report.md"})


@pytest.mark.parametrize(
    ("metadata", "writer"),
    [
        ({"run-id": "run-0", "sha256": SHA}, "run-0"),
        ({"run-id": "run-1", "sha256": "other"}, "run-1"),
        ({}, "unknown"),
    ],
)
def test_another_object_at_the_key_is_never_overwritten(metadata: dict[str, str], writer: str) -> None:
    s3 = _S3(put=[_error("PreconditionFailed")], head={"Metadata": metadata})

    with pytest.raises(ReportNotPublished) as raised:
        rp._put_once(s3, TARGET, ITEM, run_id="run-1")

    assert str(raised.value) == (
        f"the report object s3://bucket/reports/m/v1/report.md already exists (written by run {writer}); "
        "a version's report is never overwritten, so this run's report was not published."
    )


def test_an_existing_object_without_metadata_is_never_overwritten() -> None:
    with pytest.raises(ReportNotPublished, match=r"written by run unknown"):
        rp._put_once(_S3(put=[_error("412")], head={}), TARGET, ITEM, run_id="run-1")


def test_a_failed_write_quotes_s3s_code_and_message() -> None:
    with pytest.raises(ReportNotPublished) as raised:
        rp._put_once(_S3(put=[_error("AccessDenied", "not allowed")]), TARGET, ITEM, run_id="run-1")

    assert str(raised.value) == (
        "writing the report object s3://bucket/reports/m/v1/report.md failed with S3 error AccessDenied "
        "(not allowed); the report is incomplete."
    )


def test_a_failed_comparison_read_names_its_code_and_overwrites_nothing() -> None:
    s3 = _S3(put=[_error("PreconditionFailed")], head=_error("403", "denied"))

    with pytest.raises(ReportNotPublished) as raised:
        rp._put_once(s3, TARGET, ITEM, run_id="run-1")

    assert str(raised.value) == (
        "the report object s3://bucket/reports/m/v1/report.md already exists and reading it to compare "
        "failed with S3 error 403; it was not overwritten."
    )
    assert [name for name, _ in s3.calls] == ["put_object", "head_object"]


def test_publishing_puts_each_file_under_the_versions_prefix_and_returns_it() -> None:
    archive = _archive([("report.md", tarfile.REGTYPE, b"r"), ("plots/roc.png", tarfile.REGTYPE, b"p")])
    s3 = _S3(get={"ContentLength": len(archive), "Body": _Body(archive)})

    prefix = rp.publish_report(
        s3,
        artifact_uri="s3://bucket/runs/r/output/model.tar.gz",
        job_name="job-1",
        bucket="reports-bucket",
        model_name="m",
        version=3,
        run_id="run-1",
    )

    assert prefix == "s3://reports-bucket/reports/m/v3/"
    assert [(kwargs["Bucket"], kwargs["Key"]) for name, kwargs in s3.calls if name == "put_object"] == [
        ("reports-bucket", "reports/m/v3/plots/roc.png"),
        ("reports-bucket", "reports/m/v3/report.md"),
    ]
