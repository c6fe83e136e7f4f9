"""ValidateDataset's reads, limits and messages (functions/validate_dataset.py), pinned exactly against a
fake S3 client that honours `Range` on GetObject, for the mutation run: test_validate_dataset.py checks
each rule on the bundled dataset through moto with `in`/`match`, which left the exact requests (what
byte ranges are read), the edges of every limit (at, one under, one over), the summaries returned to
the state machine and most of the sentences' wording unchecked. The schema here is a small one of the
same shape as code/dataset_schema.json, so each file is a few lines and each number in a message is
worked out by hand."""

from __future__ import annotations

import io
import json
import re
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

import validate_dataset as vd
from errors import InvalidDataset
from s3uri import S3Uri
from tests.functions.helpers import gz, unit_settings

URI = S3Uri("bucket", "runs/r/input/data.csv")
SCHEMA: dict[str, Any] = {
    "id_column": "id",
    "target_column": "y",
    "missing_marker": "?",
    "required_training_columns": ["id", "x", "y"],
    "required_scoring_columns": ["id", "x"],
    "numeric_columns": ["x", "n"],
    "target_values": ["NO", ">30", "<30"],
    "positive_target_values": {"t30": ["<30"], "tany": [">30", "<30"]},
    "excluded_discharge_dispositions": [11, 13],
    "targets_excluding_death_or_hospice": ["t30"],
}


def _error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "Op")


class _Body:
    """A StreamingBody: `iter_chunks` records the chunk size asked for; `chunk_step` (when set) is the
    size it really yields, to cut gzip members at arbitrary points."""

    def __init__(self, data: bytes, chunk_sizes: list[int], chunk_step: int):
        self.data, self.chunk_sizes, self.chunk_step = data, chunk_sizes, chunk_step

    def read(self) -> bytes:
        return self.data

    def iter_chunks(self, chunk_size: int = 1024) -> Iterator[bytes]:
        self.chunk_sizes.append(chunk_size)
        step = self.chunk_step or chunk_size
        for i in range(0, len(self.data), step):
            yield self.data[i : i + step]


class _S3:
    """head_object, get_object (with `Range: bytes=a-b`, as S3 answers it) and list_objects_v2 pages
    over a dict of objects; every request is recorded."""

    class exceptions:  # boto3's spelling
        ClientError = ClientError

        class NoSuchKey(Exception):
            pass

    def __init__(self, objects: dict[str, bytes] | None = None, *, head_error: str | None = None):
        self.objects = dict(objects or {})
        self.head_error = head_error
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.chunk_sizes: list[int] = []
        self.pages: list[list[str]] | None = None
        self.chunk_step = 0

    def head_object(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("head_object", kwargs))
        if self.head_error:
            raise _error(self.head_error)
        if kwargs["Key"] not in self.objects:
            raise _error("404")
        return {"ContentLength": len(self.objects[kwargs["Key"]])}

    def get_object(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(("get_object", kwargs))
        if kwargs["Key"] not in self.objects:
            raise self.exceptions.NoSuchKey(kwargs["Key"])
        data = self.objects[kwargs["Key"]]
        if "Range" in kwargs:
            match = re.fullmatch(r"bytes=(\d+)-(\d+)", kwargs["Range"])
            assert match, kwargs["Range"]
            first, last = int(match[1]), int(match[2])
            assert first <= last < len(data), kwargs["Range"]
            data = data[first : last + 1]
        return {"Body": _Body(data, self.chunk_sizes, self.chunk_step)}

    def get_paginator(self, name: str) -> Any:
        assert name == "list_objects_v2"
        return self

    def paginate(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        self.calls.append(("paginate", kwargs))
        pages = self.pages or [sorted(k for k in self.objects if k.startswith(kwargs["Prefix"]))]
        for keys in pages:
            yield {"Contents": [{"Key": k} for k in keys]} if keys else {}


def csv_bytes(*lines: str, end: str = "\n") -> bytes:
    return "".join(line + end for line in lines).encode()


def table(rows: list[str], header: str = "id,x,y") -> bytes:
    return csv_bytes(header, *rows)


def sample(data: bytes, *, complete: bool = True, compressed: bool = False) -> vd.Sample:
    return vd.Sample(data, data, complete, compressed)


def refusal(call: Any) -> str:
    with pytest.raises(InvalidDataset) as caught:
        call()
    return str(caught.value)


def check(data: bytes, purpose: str = "training", **kwargs: Any) -> dict[str, Any]:
    return vd.check_table(sample(data), URI, SCHEMA, purpose=purpose, **kwargs)


def refused(data: bytes, purpose: str = "training", *, complete: bool = True, **kwargs: Any) -> str:
    return refusal(
        lambda: vd.check_table(sample(data, complete=complete), URI, SCHEMA, purpose=purpose, **kwargs)
    )


def mixed(n: int) -> list[str]:
    """n training rows, ids 1..n, alternating NO and <30."""
    return [f"{i},{i},{'NO' if i % 2 else '<30'}" for i in range(1, n + 1)]


# --- load_schema ---------------------------------------------------------------------------------


def test_the_schema_is_fetched_once_per_bucket_and_key() -> None:
    vd.clear_schema_cache()
    s3 = _S3({"code/a.json": b'{"v": 1}', "code/b.json": b'{"v": 2}'})

    assert vd.load_schema(s3, "bucket", "code/a.json") == {"v": 1}
    assert vd.load_schema(s3, "bucket", "code/a.json") == {"v": 1}
    assert vd.load_schema(s3, "bucket", "code/b.json") == {"v": 2}
    assert s3.calls == [
        ("get_object", {"Bucket": "bucket", "Key": "code/a.json"}),
        ("get_object", {"Bucket": "bucket", "Key": "code/b.json"}),
    ]
    vd.clear_schema_cache()
    vd.load_schema(s3, "bucket", "code/a.json")
    assert len(s3.calls) == 3


def test_a_missing_schema_says_to_deploy_the_bundle() -> None:
    vd.clear_schema_cache()
    with pytest.raises(RuntimeError) as caught:
        vd.load_schema(_S3(), "bucket", "code/dataset_schema.json")

    assert (
        str(caught.value) == "s3://bucket/code/dataset_schema.json is missing: deploy the code bundle first"
    )
    assert caught.value.__suppress_context__


# --- read_sample: the requests and the Sample ----------------------------------------------------


def test_a_small_plain_file_is_read_in_one_range_and_is_whole() -> None:
    data = table(mixed(2))
    s3 = _S3({URI.key: data})

    result = vd.read_sample(s3, URI, unit_settings(max_dataset_bytes=1000))

    assert result == vd.Sample(data, data, True, False)
    assert s3.calls == [
        ("head_object", {"Bucket": "bucket", "Key": URI.key}),
        ("get_object", {"Bucket": "bucket", "Key": URI.key, "Range": f"bytes=0-{len(data) - 1}"}),
    ]


@pytest.mark.parametrize(("size", "complete"), [(9, True), (10, True), (11, False)])
def test_a_plain_file_is_whole_up_to_the_sample_size(
    monkeypatch: pytest.MonkeyPatch, size: int, complete: bool
) -> None:
    monkeypatch.setattr(vd, "SAMPLE_BYTES", 10)
    data = b"a" * size
    s3 = _S3({URI.key: data})

    result = vd.read_sample(s3, URI, unit_settings())

    assert result == vd.Sample(data[:10], data[:10], complete, False)
    assert s3.calls[1][1]["Range"] == f"bytes=0-{min(size, 10) - 1}"


def test_a_missing_object_is_named() -> None:
    assert refusal(lambda: vd.read_sample(_S3(), URI, unit_settings())) == f"{URI} does not exist"


def test_an_s3_error_other_than_missing_is_not_a_dataset_problem() -> None:
    with pytest.raises(ClientError) as caught:
        vd.read_sample(_S3({URI.key: b"x"}, head_error="AccessDenied"), URI, unit_settings())

    assert caught.value.response["Error"]["Code"] == "AccessDenied"


def test_an_empty_object_is_refused_before_any_read() -> None:
    s3 = _S3({URI.key: b""})

    assert refusal(lambda: vd.read_sample(s3, URI, unit_settings())) == f"{URI} is empty (0 bytes)"
    assert [name for name, _ in s3.calls] == ["head_object"]


@pytest.mark.parametrize("size", [99, 100])
def test_a_file_at_the_size_limit_is_read(size: int) -> None:
    result = vd.read_sample(_S3({URI.key: b"a" * size}), URI, unit_settings(max_dataset_bytes=100))

    assert len(result.data) == size


def test_a_file_one_byte_over_the_size_limit_is_refused() -> None:
    s3 = _S3({URI.key: b"a" * 101})

    assert refusal(lambda: vd.read_sample(s3, URI, unit_settings(max_dataset_bytes=100))) == (
        f"{URI} is 101 bytes; the limit is 100 bytes (MAX_DATASET_BYTES)"
    )


def test_plain_text_named_gz_is_refused() -> None:
    uri = S3Uri("bucket", "data.csv.gz")

    assert refusal(lambda: vd.read_sample(_S3({uri.key: b"id\n1\n"}), uri, unit_settings())) == (
        f"{uri} is named .gz but is not gzip-compressed"
    )


def test_a_gzip_file_is_read_through_in_256_kib_chunks() -> None:
    text = table(mixed(3))
    packed = gz(text)
    s3 = _S3({URI.key: packed})

    result = vd.read_sample(s3, URI, unit_settings())

    assert result == vd.Sample(packed, text, True, True)
    assert s3.calls[1:] == [
        ("get_object", {"Bucket": "bucket", "Key": URI.key, "Range": f"bytes=0-{len(packed) - 1}"}),
        ("get_object", {"Bucket": "bucket", "Key": URI.key}),
    ]
    assert s3.chunk_sizes == [256 * 1024]


def test_a_gzip_file_of_several_members_is_read_to_its_end() -> None:
    # Concatenated gzip files are one valid gzip file: each member is decompressed in turn.
    s3 = _S3({URI.key: gz(b"id,x,y\n1,1,NO\n") + gz(b"2,2,<30\n") + gz(b"3,3,NO\n")})

    assert vd.read_sample(s3, URI, unit_settings()).data == b"id,x,y\n1,1,NO\n2,2,<30\n3,3,NO\n"


def test_a_zlib_stream_after_a_gzip_member_is_corrupt() -> None:
    # Every member of a gzip file is gzip (the training job's gzip reader refuses anything else).
    s3 = _S3({URI.key: gz(b"id\n1\n") + zlib.compress(b"2\n")})

    assert refusal(lambda: vd.read_sample(s3, URI, unit_settings())) == (
        f"{URI} is a corrupt gzip file (Error -3 while decompressing data: incorrect header check)"
    )


def test_members_split_across_chunks_are_all_read() -> None:
    s3 = _S3({URI.key: gz(b"id,x,y\n1,1,NO\n") + gz(b"2,2,<30\n")})
    s3.chunk_step = 7  # chunks that cut the members anywhere

    assert vd.read_sample(s3, URI, unit_settings()).data == b"id,x,y\n1,1,NO\n2,2,<30\n"


@pytest.mark.parametrize(("size", "complete"), [(99, True), (100, True), (101, False)])
def test_a_gzip_file_is_whole_while_it_decompresses_to_at_most_the_text_limit(
    monkeypatch: pytest.MonkeyPatch, size: int, complete: bool
) -> None:
    monkeypatch.setattr(vd, "SAMPLE_TEXT_BYTES", 100)
    text = bytes(range(256)) * 2

    result = vd.read_sample(_S3({URI.key: gz(text[:size])}), URI, unit_settings())

    assert (result.data, result.complete) == (text[: min(size, 100)], complete)


def test_the_kept_text_stops_at_the_limit_across_chunks_and_members(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vd, "SAMPLE_TEXT_BYTES", 10)
    s3 = _S3({URI.key: gz(b"abcdef") + gz(b"ghijklmn")})
    s3.chunk_step = 5

    result = vd.read_sample(s3, URI, unit_settings())

    assert (result.data, result.complete) == (b"abcdefghij", False)


def test_a_truncated_gzip_file_is_named() -> None:
    packed = gz(table(mixed(50)))

    assert refusal(lambda: vd.read_sample(_S3({URI.key: packed[:-10]}), URI, unit_settings())) == (
        f"{URI} is a truncated gzip file (the compressed stream ends before its end marker); upload it again"
    )


def test_a_corrupt_gzip_file_is_named_with_zlibs_reason() -> None:
    corrupt = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03" + b"\xff" * 20

    assert refusal(lambda: vd.read_sample(_S3({URI.key: corrupt}), URI, unit_settings())) == (
        f"{URI} is a corrupt gzip file (Error -3 while decompressing data: invalid block type)"
    )


def test_bytes_after_a_gzip_member_that_are_not_gzip_are_corrupt() -> None:
    s3 = _S3({URI.key: gz(b"id\n1\n") + b"garbage!"})

    assert refusal(lambda: vd.read_sample(s3, URI, unit_settings())) == (
        f"{URI} is a corrupt gzip file (Error -3 while decompressing data: incorrect header check)"
    )


def big_gzip(text: bytes, isize: int | None = None) -> bytes:
    packed = gz(text)
    return packed if isize is None else packed[:-4] + isize.to_bytes(4, "little")


@pytest.mark.parametrize(("over_limit", "read_through"), [(-1, False), (0, True), (1, True)])
def test_a_gzip_file_up_to_the_read_through_size_is_read_through(
    monkeypatch: pytest.MonkeyPatch, over_limit: int, read_through: bool
) -> None:
    text = table(mixed(40))
    packed = gz(text)
    size = len(packed)
    monkeypatch.setattr(vd, "FULL_GZIP_CHECK_BYTES", size + over_limit)
    s3 = _S3({URI.key: packed})

    result = vd.read_sample(s3, URI, unit_settings())

    ranges = [kwargs.get("Range") for name, kwargs in s3.calls if name == "get_object"]
    if read_through:
        assert ranges == [f"bytes=0-{size - 1}", None]
    else:  # the trailer is checked and only the first bytes are decompressed
        assert ranges == [f"bytes=0-{size - 1}", f"bytes={size - 8}-{size - 1}"]
    assert result == vd.Sample(packed, text, read_through, True)


def test_a_large_gzip_file_is_sampled_from_its_first_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vd, "FULL_GZIP_CHECK_BYTES", 10)
    monkeypatch.setattr(vd, "SAMPLE_TEXT_BYTES", 30)
    text = table(mixed(40))
    packed = gz(text)

    result = vd.read_sample(_S3({URI.key: packed}), URI, unit_settings())

    assert result == vd.Sample(packed, text[:30], False, True)


class _Tail:
    """An S3 that answers one ranged read with `tail` (the last 8 bytes of a `size`-byte object)."""

    def __init__(self, tail: bytes):
        self.tail, self.ranges = tail, []

    def get_object(self, **kwargs: Any) -> dict[str, Any]:
        self.ranges.append(kwargs)
        return {"Body": io.BytesIO(self.tail)}


def trailer(isize: int) -> bytes:
    return b"\x12\x34\x56\x78" + isize.to_bytes(4, "little")


def test_the_trailer_read_is_the_last_eight_bytes() -> None:
    s3 = _Tail(trailer(5000))

    vd._check_gzip_trailer(s3, URI, 1000)

    assert s3.ranges == [{"Bucket": "bucket", "Key": URI.key, "Range": "bytes=992-999"}]


@pytest.mark.parametrize(("isize", "refused"), [(999, True), (1000, False), (1001, False)])
def test_a_trailer_claiming_less_text_than_the_compressed_size_is_truncation(
    isize: int, refused: bool
) -> None:
    call = lambda: vd._check_gzip_trailer(_Tail(trailer(isize)), URI, 1000)  # noqa: E731

    if refused:
        assert refusal(call) == f"{URI} looks like a truncated gzip file (its trailer is not a gzip trailer)"
    else:
        call()


def test_a_trailer_claiming_over_2_gib_is_not_truncation() -> None:
    # ISIZE is unsigned: 2**31 + 5 bytes of text is a large claim, not a negative one.
    vd._check_gzip_trailer(_Tail(trailer(2**31 + 5)), URI, 1000)


@pytest.mark.parametrize(("size", "judged"), [(2**28 - 1, True), (2**28, False)])
def test_the_trailer_is_judged_only_while_sixteen_times_the_size_fits_in_32_bits(
    size: int, judged: bool
) -> None:
    # ISIZE wraps at 2**32: past that a small ISIZE is no evidence of truncation.
    call = lambda: vd._check_gzip_trailer(_Tail(trailer(0)), URI, size)  # noqa: E731

    if judged:
        assert "looks like a truncated gzip file" in refusal(call)
    else:
        call()


# --- _rows: binary, encoding, blank lines, delimiters ----------------------------------------------


@pytest.mark.parametrize(("offset", "binary"), [(8191, True), (8192, False)])
def test_a_nul_byte_in_the_first_8_kib_is_binary(offset: int, binary: bool) -> None:
    data = b"id,x,y\n" + b"1,1,NO\n" * 1400
    data = data[:offset] + b"\x00" + data[offset + 1 :]

    expected = "is binary, not a CSV text file" if binary else "repeats id 1 (lines 2 and 3)"

    assert refused(data, complete=False).startswith(f"{URI} {expected}")


def test_a_nul_in_the_raw_head_of_a_plain_file_is_binary_even_when_the_text_has_none() -> None:
    s = vd.Sample(b"id\x00", table(mixed(2)), True, False)

    assert refusal(lambda: vd.check_table(s, URI, SCHEMA, purpose="training")) == (
        f"{URI} is binary, not a CSV text file"
    )


def test_a_nul_in_the_decompressed_text_of_a_gzip_file_is_binary() -> None:
    s = vd.Sample(gz(b"x"), b"id,x,y\n1,\x00,NO\n2,2,<30\n", True, True)

    assert refusal(lambda: vd.check_table(s, URI, SCHEMA, purpose="training")) == (
        f"{URI} is binary, not a CSV text file"
    )


def test_the_nuls_of_a_gzip_header_are_not_binary_text() -> None:
    s = vd.Sample(gz(b"x"), table(mixed(2)), True, True)

    assert vd.check_table(s, URI, SCHEMA, purpose="training")["sampledRows"] == 2


def test_a_cut_sample_drops_its_unfinished_last_line() -> None:
    data = table(mixed(3)) + b"4,4"

    result = vd.check_table(sample(data, complete=False), URI, SCHEMA, purpose="training")

    assert (result["sampledRows"], result["sampleIsWholeFile"]) == (3, False)


def test_a_whole_file_keeps_a_last_line_without_a_newline() -> None:
    assert check(table(mixed(3)) + b"4,4,NO")["sampledRows"] == 4


def test_a_cut_sample_whose_only_newline_is_its_first_byte_keeps_only_that() -> None:
    assert refused(b"\nid,x,y", complete=False) == f"{URI} has no header and no rows"


def test_a_cut_sample_with_no_newline_at_all_is_kept_whole() -> None:
    assert refused(b"id,x,y", complete=False) == f"{URI} has 0 data rows; at least 2 needed for training"


def test_invalid_utf8_names_the_byte_offset() -> None:
    data = table(mixed(2)) + b"3,3,\xe9\n"

    assert (
        refused(data) == f"{URI} is not UTF-8 text (invalid byte at offset 26)"
    )  # 7 + 7 + 8 + 4 bytes before it


def test_a_bom_is_not_part_of_the_first_column_name() -> None:
    result = check(b"\xef\xbb\xbf" + table(mixed(2)))

    assert result["header"] == "id,x,y"


@pytest.mark.parametrize("body", [b"\n\n", b" \r\n,,\n", b"\xef\xbb\xbf\r\n"])
def test_a_file_of_blank_lines_has_no_header_and_no_rows(body: bytes) -> None:
    assert refused(body) == f"{URI} has no header and no rows"


def test_blank_lines_before_the_header_name_the_header_line() -> None:
    assert refused(b"\r\n \r\n,\r\n" + table(mixed(2)).replace(b"\n", b"\r\n")) == (
        f"{URI} starts with a blank line; the header (the column names) must be line 1, not line 4"
    )


def test_header_names_are_stripped_of_spaces() -> None:
    assert check(table(mixed(2), header=" id , x ,y "))["header"] == "id,x,y"


@pytest.mark.parametrize(
    ("header", "label"),
    [("id;x;y", "';'"), ("id\tx\ty", "a tab"), ("id|x|y", "'|'"), ("id;x|y", "';'"), ("id\tx|y", "a tab")],
)
def test_a_header_of_one_field_holding_another_delimiter_names_it(header: str, label: str) -> None:
    assert refused(table([], header=header)) == (
        f"{URI} uses {label} as delimiter; the pipeline reads comma-separated files"
    )


def test_a_header_of_one_plain_field_is_not_a_delimiter_problem() -> None:
    assert refused(table(["1"], header="id")) == f"{URI} has no target column 'y' (header: id...)"


def test_another_delimiter_inside_a_comma_separated_header_is_allowed() -> None:
    assert check(table(["1,1,NO,a", "2,2,<30,b"], header="id,x,y,a;b"))["columns"] == 4


# --- line lengths ---------------------------------------------------------------------------------


@pytest.fixture
def payload_of_40_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vd, "TRANSFORM_MAX_PAYLOAD_MB", 40 / 2**20)  # exactly 40 bytes


def long_line_message(number: int, size: int, at_least: bool = False) -> str:
    return (
        f"{URI} line {number} is {'at least ' if at_least else ''}{size} bytes; batch transform scores "
        f"lines in mini-batches of at most {40 / 2**20} MiB (MaxPayloadInMB), so it cannot score this line"
    )


@pytest.mark.usefixtures("payload_of_40_bytes")
def test_a_line_of_exactly_the_payload_limit_with_its_newline_passes() -> None:
    padded = f"3,{'0' * 33}3,NO"  # 39 characters and the newline: 40 bytes

    assert check(table(["1,1,NO", "2,2,<30", padded]))["sampledRows"] == 3


@pytest.mark.usefixtures("payload_of_40_bytes")
def test_a_line_one_byte_over_the_payload_limit_is_refused_with_its_number() -> None:
    padded = f"3,{'0' * 34}3,NO"  # 40 characters and the newline: 41 bytes

    assert refused(table(["1,1,NO", "2,2,<30", padded])) == long_line_message(4, 41)


@pytest.mark.usefixtures("payload_of_40_bytes")
def test_a_crlf_line_counts_its_carriage_return() -> None:
    padded = f"3,{'0' * 33}3,NO"  # 39 characters, CR and LF: 41 bytes

    assert refused(table(["1,1,NO", padded]).replace(b"\n", b"\r\n")) == long_line_message(3, 41)


@pytest.mark.usefixtures("payload_of_40_bytes")
def test_the_last_line_of_a_whole_file_without_newline_is_exactly_its_length() -> None:
    data = table(["1,1,NO", "2,2,<30"]) + f"3,{'0' * 35}3,NO".encode()  # 41 bytes, no newline

    assert refused(data) == long_line_message(4, 41)


@pytest.mark.usefixtures("payload_of_40_bytes")
def test_the_unfinished_last_line_of_a_cut_sample_is_at_least_its_length() -> None:
    data = table(["1,1,NO", "2,2,<30"]) + b"3," + b"0" * 50

    assert refused(data, complete=False) == long_line_message(4, 52, at_least=True)


@pytest.mark.usefixtures("payload_of_40_bytes")
def test_a_finished_long_line_of_a_cut_sample_is_exactly_its_length() -> None:
    padded = f"3,{'0' * 35}3,NO"  # 41 characters and the newline: 42 bytes

    assert refused(table(["1,1,NO", padded, "4,4,NO"]), complete=False) == long_line_message(3, 42)


def test_the_payload_limit_is_six_mib() -> None:
    # A 6 MiB line of 103 fields (the csv module refuses a single field over 128 KiB).
    mib6 = 6 * 1024 * 1024
    sizes = [(mib6 - 107) // 100] * 99
    sizes.append(mib6 - 107 - sum(sizes))
    line = b"1,1,NO" + b"".join(b"," + b"0" * size for size in sizes) + b"\n"
    assert len(line) == mib6
    header = "id,x,y," + ",".join(f"c{i}" for i in range(100))
    data = csv_bytes(header) + line + csv_bytes("2,2,<30" + ",0" * 100)

    assert check(data)["sampledRows"] == 2
    assert refused(data.replace(b",0", b",00", 1)).startswith(f"{URI} line 2 is {mib6 + 1} bytes; ")


# --- columns and rows -----------------------------------------------------------------------------


def test_a_missing_target_lists_the_first_eight_header_names() -> None:
    header = ",".join(f"c{i}" for i in range(10))

    assert refused(table([], header=header)) == (
        f"{URI} has no target column 'y' (header: c0,c1,c2,c3,c4,c5,c6,c7...)"
    )


def test_the_score_file_needs_no_target_column() -> None:
    assert check(table(["1,1"], header="id,x"), "scoring")["columns"] == 2


def test_the_missing_required_columns_are_listed_in_schema_order() -> None:
    assert refused(table([], header="y,n")) == f"{URI} lacks required training columns: id, x"
    assert refused(table([], header="n"), "scoring") == f"{URI} lacks required scoring columns: id, x"


@pytest.mark.parametrize(
    ("purpose", "rows", "message"),
    [
        ("training", [], "has 0 data rows; at least 2 needed for training"),
        ("training", ["1,1,NO"], "has 1 data row; at least 2 needed for training"),
        ("scoring", [], "has 0 data rows; at least 1 needed for scoring"),
    ],
)
def test_too_few_rows_for_the_purpose_are_counted(purpose: str, rows: list[str], message: str) -> None:
    assert refused(table(rows), purpose) == f"{URI} {message}"


@pytest.mark.parametrize(("purpose", "rows"), [("training", ["1,1,NO", "2,2,<30"]), ("scoring", ["1,1,NO"])])
def test_the_minimum_number_of_rows_passes(purpose: str, rows: list[str]) -> None:
    assert check(table(rows), purpose)["sampledRows"] == len(rows)


def test_a_row_with_the_wrong_field_count_is_named() -> None:
    assert refused(table(["1,1,NO", "2,2,<30,extra"])) == f"{URI} line 3 has 4 fields; the header has 3"


def test_numeric_columns_accept_numbers_blanks_and_the_missing_marker() -> None:
    rows = ["1, 2.5 ,NO,1e3", "2,,<30,-4", "3,?,NO, ", "4,7,NO,?"]

    assert check(table(rows, header="id,x,y,n"))["sampledRows"] == 4


def test_the_missing_marker_comes_from_the_schema() -> None:
    schema = {**SCHEMA, "missing_marker": "NA"}
    data = table(["1,NA,NO", "2,?,<30"])

    assert refusal(lambda: vd.check_table(sample(data), URI, schema, purpose="training")) == (
        f"{URI} column 'x' must be numeric; line 3 has '?'"
    )


def test_without_a_missing_marker_in_the_schema_it_is_a_question_mark() -> None:
    schema = {k: v for k, v in SCHEMA.items() if k != "missing_marker"}

    assert (
        vd.check_table(sample(table(["1,?,NO", "2,2,<30"])), URI, schema, purpose="training")["columns"] == 3
    )


def test_text_in_a_numeric_column_is_quoted_up_to_forty_characters() -> None:
    value = "a" * 39 + "bc"

    assert refused(table(["1,1,NO", f"2,{value},<30"])) == (
        f"{URI} column 'x' must be numeric; line 3 has {'a' * 39 + 'b'!r}"
    )


def test_a_missing_value_does_not_end_the_rows_numeric_checks() -> None:
    assert refused(table(["1,?,NO,2", "2,,<30,two"], header="id,x,y,n")) == (
        f"{URI} column 'n' must be numeric; line 3 has 'two'"
    )


def test_a_quoted_value_is_quoted_with_its_own_line_break() -> None:
    # The file's CRLF inside a quoted field is the value's: not turned into "\n" on reading.
    data = b'id,x,y\r\n1,1,NO\r\n2,"4\r\n2",<30\r\n'

    assert refused(data) == f"{URI} column 'x' must be numeric; line 3 has '4\\r\\n2'"


def test_lone_carriage_returns_end_lines_as_the_csv_module_reads_them() -> None:
    # Old Mac line ends: each CR ends a row (pandas reads them so too), and the line numbers follow.
    data = b"id,x,y\r1,1,NO\r2,2,<30\r3,three,NO\r"

    assert refused(data) == f"{URI} column 'x' must be numeric; line 4 has 'three'"


def test_the_second_numeric_column_is_checked_too() -> None:
    assert refused(table(["1,1,NO,2", "2,2,<30,two"], header="id,x,y,n")) == (
        f"{URI} column 'n' must be numeric; line 3 has 'two'"
    )


def test_a_repeated_id_names_both_lines_after_stripping() -> None:
    assert refused(table(["7,1,NO", "8,1,<30", " 7 ,1,NO"])) == f"{URI} repeats id 7 (lines 2 and 4)"


def test_ids_are_not_checked_when_the_id_column_is_absent() -> None:
    schema = {**SCHEMA, "required_scoring_columns": ["x"]}
    data = table(["1", "1"], header="x")

    assert vd.check_table(sample(data), URI, schema, purpose="scoring")["sampledRows"] == 2


def test_an_unknown_target_value_lists_the_allowed_ones_sorted() -> None:
    assert refused(table(["1,1,NO", "2,2, yes "])) == (
        f"{URI} column 'y' has unknown value 'yes' on line 3; expected one of ['<30', '>30', 'NO']"
    )


def test_the_score_file_target_values_are_not_checked() -> None:
    assert check(table(["1,1,yes", "2,2,no"]), "scoring")["sampledRows"] == 2


# --- classes --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("rows", "refused_"), [(99, False), (100, True)])
def test_a_sample_of_a_hundred_rows_of_one_class_is_refused(rows: int, refused_: bool) -> None:
    data = table([f"{i},1, NO" for i in range(rows)])

    if refused_:
        assert refused(data, complete=False) == f"{URI} has a single class: all 100 sampled rows have y='NO'"
    else:
        assert (
            vd.check_table(sample(data, complete=False), URI, SCHEMA, purpose="training")["sampledRows"] == 99
        )


def test_a_hundred_rows_of_two_classes_pass() -> None:
    assert check(table(mixed(100)))["sampledRows"] == 100


@pytest.mark.parametrize(
    ("target", "values", "message"),
    [
        ("t30", ["NO", ">30"], "none of its 4 rows have y in ['<30']"),
        ("t30", ["<30", "<30"], "all of its 4 rows have y in ['<30']"),
        ("tany", [">30", "<30"], "all of its 4 rows have y in ['<30', '>30']"),
    ],
)
def test_a_whole_file_with_one_outcome_for_the_target_is_refused(
    target: str, values: list[str], message: str
) -> None:
    data = table([f"{i},1,{values[i % 2]}" for i in range(4)])

    assert refused(data, training_target=target) == (
        f"{URI} has a single class for target {target}: {message}; training needs both outcomes"
    )


def test_a_cut_sample_with_one_outcome_is_not_judged_by_it() -> None:
    data = table([f"{i},1,NO" for i in range(4)])

    result = vd.check_table(
        sample(data, complete=False), URI, SCHEMA, purpose="training", training_target="t30"
    )

    assert result["sampledRows"] == 4


def test_without_a_known_target_the_outcomes_are_not_counted() -> None:
    assert check(table(["1,1,NO", "2,1,NO"]), training_target="other")["sampledRows"] == 2


# --- size -----------------------------------------------------------------------------------------


def sized(minimum: dict[str, int] | None) -> dict[str, Any]:
    return {**SCHEMA, "minimum_evaluation": minimum}


def size_check(
    rows: list[str], minimum: dict[str, int] | None, *, header: str = "id,x,y", **kwargs: Any
) -> Any:
    return lambda: vd.check_table(
        sample(table(rows, header=header)), URI, sized(minimum), purpose="training", **kwargs
    )


MIN = {"held_out_rows": 4, "held_out_per_class": 1}


@pytest.mark.parametrize(
    ("fraction", "rows"),
    [(None, 8), ("", 8), ("0.5", 8), (0.5, 8), ("1", 4), ("0.25", 16), ("0.3", 14)],
)
def test_a_whole_file_of_the_minimum_size_for_the_fraction_passes(fraction: Any, rows: int) -> None:
    check_ = size_check(mixed(rows), MIN, training_target="tany", validation_fraction=fraction)

    assert check_()["sampledRows"] == rows


@pytest.mark.parametrize(
    ("fraction", "rows", "counts", "shown"),
    [
        (
            "",
            7,
            "3 positives and 4 negatives",
            "0.5 a dataset of at least 8 usable rows with 2 positives and 2",
        ),
        (
            "1",
            3,
            "1 positives and 2 negatives",
            "1 a dataset of at least 4 usable rows with 1 positives and 1",
        ),
        (
            None,
            7,
            "3 positives and 4 negatives",
            "0.5 a dataset of at least 8 usable rows with 2 positives and 2",
        ),
        (
            "0.25",
            15,
            "7 positives and 8 negatives",
            "0.25 a dataset of at least 16 usable rows with 4 positives and 4",
        ),
        (
            "0.3",
            13,
            "6 positives and 7 negatives",
            "0.3 a dataset of at least 14 usable rows with 4 positives and 4",
        ),
    ],
)
def test_a_whole_file_one_row_under_the_minimum_is_refused(
    fraction: Any, rows: int, counts: str, shown: str
) -> None:
    message = refusal(size_check(mixed(rows), MIN, training_target="tany", validation_fraction=fraction))

    assert message == (
        f"{URI} is too small to evaluate: it has {rows} usable rows with {counts} for target tany; a ROC "
        "AUC worth comparing needs at least 4 held-out rows with 1 of each outcome, so at "
        f"validation_fraction {shown} negatives"
    )


@pytest.mark.parametrize(
    ("held_out", "fraction", "rows", "passes"),
    [(3, "0.3", 10, True), (3, "0.3", 9, False), (1, "0.099999996", 10, True), (1, "0.099999996", 9, False)],
)
def test_the_minimum_is_rounded_to_six_places_before_it_is_rounded_up(
    held_out: int, fraction: str, rows: int, passes: bool
) -> None:
    # 3 / 0.3 is 10.000000000000002 in floating point and 1 / 0.099999996 is 10.0000004: both need ten
    # rows, not eleven (a float's noise, or a fraction given to more places than it means).
    call = size_check(
        mixed(rows),
        {"held_out_rows": held_out, "held_out_per_class": 0},
        training_target="tany",
        validation_fraction=fraction,
    )

    if passes:
        assert call()["sampledRows"] == rows
    else:
        assert "a dataset of at least 10 usable rows" in refusal(call)


@pytest.mark.parametrize(("positives", "passes"), [(1, False), (2, True)])
def test_each_outcome_needs_its_minimum(positives: int, passes: bool) -> None:
    # 6 rows at 0.5: 4 needed, with 2 of each outcome; the positives are the scarce one, then the negatives.
    minimum = {"held_out_rows": 2, "held_out_per_class": 1}
    rows = [f"{i},1,{'<30' if i < positives else 'NO'}" for i in range(6)]
    flipped = [r.replace("NO", "X").replace("<30", "NO").replace("X", "<30") for r in rows]

    for body in (rows, flipped):
        call = size_check(body, minimum, training_target="t30")
        if passes:
            assert call()["sampledRows"] == 6
        else:
            assert "is too small to evaluate: it has 6 usable rows with " in refusal(call)


def test_death_and_hospice_encounters_are_not_counted_for_the_30_day_target() -> None:
    rows = [
        f"{i},1,{'<30' if i % 2 else 'NO'},{code}"
        for i, code in enumerate(["11", " 13", "13.0", "1", "x", "1", "2", "3"])
    ]
    header = "id,x,y,discharge_disposition_id"

    message = refusal(size_check(rows, MIN, header=header, training_target="t30"))

    assert message.startswith(
        f"{URI} is too small to evaluate: it has 5 usable rows with 3 positives and 2 negatives for target "
        "t30 (death/hospice encounters not counted); a ROC AUC"
    )
    assert size_check(rows, MIN, header=header, training_target="tany")()["sampledRows"] == 8


def test_a_schema_without_the_exclusion_lists_counts_every_row() -> None:
    schema = {
        k: v
        for k, v in sized(MIN).items()
        if k not in ("excluded_discharge_dispositions", "targets_excluding_death_or_hospice")
    }
    data = table(
        [f"{i},1,{'<30' if i % 2 else 'NO'},11" for i in range(7)], header="id,x,y,discharge_disposition_id"
    )

    message = refusal(
        lambda: vd.check_table(sample(data), URI, schema, purpose="training", training_target="t30")
    )

    assert message.startswith(
        f"{URI} is too small to evaluate: it has 7 usable rows with 3 positives and 4 negatives for "
        "target t30; "
    )


def test_without_a_discharge_column_every_row_is_usable() -> None:
    assert size_check(mixed(8), MIN, training_target="t30")()["sampledRows"] == 8


def test_thousands_are_separated_in_the_size_message() -> None:
    minimum = {"held_out_rows": 1000, "held_out_per_class": 1}

    message = refusal(size_check(mixed(2), minimum, training_target="tany", validation_fraction="0.5"))

    assert "a dataset of at least 2,000 usable rows" in message
    assert "at least 1000 held-out rows with 1 of each outcome" in message


@pytest.mark.parametrize("fraction", ["abc", "0", 0, "-0.5", "1.5"])
def test_an_unusable_validation_fraction_is_left_to_the_training_job(fraction: Any) -> None:
    call = size_check(
        mixed(2),
        {"held_out_rows": 10**6, "held_out_per_class": 1},
        training_target="tany",
        validation_fraction=fraction,
    )

    assert call()["sampledRows"] == 2


@pytest.mark.parametrize("minimum", [None, {}])
def test_a_bundle_without_minimums_leaves_the_size_to_the_training_job(minimum: Any) -> None:
    assert size_check(mixed(2), minimum, training_target="tany")()["sampledRows"] == 2


def test_a_cut_sample_is_not_judged_by_its_size() -> None:
    data = table(mixed(2))
    result = vd.check_table(
        sample(data, complete=False), URI, sized(MIN), purpose="training", training_target="tany"
    )

    assert result["sampledRows"] == 2


def test_the_score_file_is_not_judged_by_its_size() -> None:
    data = table(["1,1"], header="id,x")

    assert (
        vd.check_table(sample(data), URI, sized(MIN), purpose="scoring", training_target="tany")["columns"]
        == 2
    )


@pytest.mark.parametrize(("value", "code"), [("11", "11"), (" 11 ", "11"), ("11.0", "11"), (" x ", "x")])
def test_a_discharge_code_is_read_as_the_schema_lists_it(value: str, code: str) -> None:
    assert vd._code(value) == code


# --- the summary and the header limit --------------------------------------------------------------


def test_the_summary_is_what_the_state_machine_reads() -> None:
    data = table(mixed(3))

    assert vd.check_table(sample(data, complete=False), URI, SCHEMA, purpose="training") == {
        "uri": str(URI),
        "columns": 3,
        "sampledRows": 3,
        "sampleIsWholeFile": False,
        "compressed": False,
        "header": "id,x,y",
        "compressionType": "None",
    }
    gzipped = vd.check_table(sample(data, compressed=True), URI, SCHEMA, purpose="scoring")
    assert (gzipped["compressed"], gzipped["compressionType"], gzipped["sampleIsWholeFile"]) == (
        True,
        "Gzip",
        True,
    )


@pytest.mark.parametrize(("limit", "refused_"), [(6, False), (5, True)])
def test_a_header_line_over_the_environment_value_limit_is_refused(
    monkeypatch: pytest.MonkeyPatch, limit: int, refused_: bool
) -> None:
    monkeypatch.setattr(vd, "ENVIRONMENT_VALUE_MAX", limit)
    data = table(mixed(2))  # the header line "id,x,y" is 6 characters

    if refused_:
        assert refused(data) == (
            f"{URI} has a header line of 6 characters; batch transform passes it to the container as an "
            "Environment value, at most 5"
        )
    else:
        assert check(data)["header"] == "id,x,y"


def test_the_environment_value_limit_is_botocores() -> None:
    import botocore.loaders

    model = botocore.loaders.Loader().load_service_model("sagemaker", "service-2")
    assert model["shapes"]["TransformEnvironmentValue"]["max"] == vd.ENVIRONMENT_VALUE_MAX


# --- validate_run_inputs, the parts of a prefix and the handler -------------------------------------

BUCKET = "bucket"


def run_s3(objects: dict[str, bytes]) -> _S3:
    vd.clear_schema_cache()
    return _S3({SCHEMA_KEY: json.dumps(sized(MIN)).encode(), **objects})


def run(snapshot: str, score: str, **hyperparameters: Any) -> dict[str, Any]:
    return {
        "snapshotUri": f"s3://{BUCKET}/{snapshot}",
        "scoreUri": f"s3://{BUCKET}/{score}",
        "hyperparameters": hyperparameters,
    }


SETTINGS = unit_settings(bucket=BUCKET)
SCHEMA_KEY = SETTINGS.schema_key


def test_a_run_scoring_its_own_dataset_reads_it_once_and_copies_the_summary() -> None:
    s3 = run_s3({"d.csv": table(mixed(8))})

    result = vd.validate_run_inputs(run("d.csv", "d.csv", target="tany"), settings=SETTINGS, s3=s3)

    assert result["dataset"] == result["scoreFile"]
    assert result["dataset"] is not result["scoreFile"]
    assert [kwargs.get("Key") for name, kwargs in s3.calls if name == "head_object"] == ["d.csv"]


def test_the_runs_target_and_validation_fraction_reach_the_training_checks() -> None:
    s3 = run_s3({"d.csv": table(mixed(8))})

    message = refusal(
        lambda: vd.validate_run_inputs(
            run("d.csv", "d.csv", target="tany", validation_fraction="0.25"), settings=SETTINGS, s3=s3
        )
    )

    assert "for target tany; " in message
    assert "at validation_fraction 0.25 a dataset of at least 16 usable rows" in message


def test_a_run_without_hyperparameters_is_checked_without_a_target() -> None:
    s3 = run_s3({"d.csv": table(mixed(2))})
    event = run("d.csv", "d.csv")
    event["hyperparameters"] = None

    assert vd.validate_run_inputs(event, settings=SETTINGS, s3=s3)["dataset"]["sampledRows"] == 2


def test_a_separate_score_file_is_checked_for_scoring() -> None:
    s3 = run_s3({"d.csv": table(mixed(2)), "s.csv": table(["1,x"], header="id,x")})

    message = refusal(lambda: vd.validate_run_inputs(run("d.csv", "s.csv"), settings=SETTINGS, s3=s3))

    assert message == f"s3://{BUCKET}/s.csv column 'x' must be numeric; line 2 has 'x'"


def test_a_separate_score_file_summary_is_returned() -> None:
    s3 = run_s3({"d.csv": table(mixed(2)), "s.csv": table(["1,1"], header="id,x")})

    result = vd.validate_run_inputs(run("d.csv", "s.csv"), settings=SETTINGS, s3=s3)

    assert result["scoreFile"] == {
        "uri": f"s3://{BUCKET}/s.csv",
        "columns": 2,
        "sampledRows": 1,
        "sampleIsWholeFile": True,
        "compressed": False,
        "header": "id,x",
        "compressionType": "None",
    }


def parts(objects: dict[str, bytes]) -> tuple[_S3, dict[str, Any]]:
    s3 = run_s3({"d.csv": table(mixed(2)), **{f"p/{k}": v for k, v in objects.items()}})
    return s3, run("d.csv", "p/")


def test_parts_are_listed_under_the_prefix_in_key_order_without_folder_markers() -> None:
    s3 = _S3()
    s3.pages = [["p/", "p/b.csv"], [], ["p/sub/", "p/a.csv"]]

    assert vd.score_parts(s3, S3Uri(BUCKET, "p/")) == [S3Uri(BUCKET, "p/a.csv"), S3Uri(BUCKET, "p/b.csv")]
    assert s3.calls == [("paginate", {"Bucket": BUCKET, "Prefix": "p/"})]


@pytest.mark.parametrize("count", [2, 3])
def test_up_to_the_part_limit_parts_are_accepted(monkeypatch: pytest.MonkeyPatch, count: int) -> None:
    monkeypatch.setattr(vd, "MAX_SCORE_PARTS", 3)
    s3 = _S3({f"p/{i}.csv": b"" for i in range(count)})

    assert len(vd.score_parts(s3, S3Uri(BUCKET, "p/"))) == count


def test_one_part_over_the_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vd, "MAX_SCORE_PARTS", 3)
    s3 = _S3({f"p/{i}.csv": b"" for i in range(4)})

    assert refusal(lambda: vd.score_parts(s3, S3Uri(BUCKET, "p/"))) == (
        f"s3://{BUCKET}/p/ holds more than 3 parts; join some (each part's sample is checked before training)"
    )


def test_the_part_limit_is_a_hundred() -> None:
    assert len(vd.score_parts(_S3({f"p/{i:03}.csv": b"" for i in range(100)}), S3Uri(BUCKET, "p/"))) == 100


def test_a_prefix_of_only_folder_markers_holds_no_parts() -> None:
    s3 = _S3()
    s3.pages = [["p/", "p/sub/"]]

    assert refusal(lambda: vd.score_parts(s3, S3Uri(BUCKET, "p/"))) == (
        f"s3://{BUCKET}/p/ holds no parts to score (no objects under the prefix)"
    )


def test_the_parts_summary_adds_up_the_parts() -> None:
    s3, event = parts({"a.csv": table(["1,1", "2,2"], header="id,x"), "b.csv": table(["3,3"], header="id,x")})

    result = vd.validate_run_inputs(event, settings=SETTINGS, s3=s3)

    assert list(result) == ["dataset", "scoreFile"]
    assert result["dataset"]["uri"] == f"s3://{BUCKET}/d.csv"
    assert result["scoreFile"] == {
        "uri": f"s3://{BUCKET}/p/",
        "parts": 2,
        "columns": 2,
        "sampledRows": 3,
        "sampleIsWholeFile": True,
        "compressed": False,
        "header": "id,x",
        "compressionType": "None",
    }


def test_a_prefix_of_one_part_is_summarised_from_it() -> None:
    s3, event = parts({"a.csv": table(["1,1", "2,2"], header="id,x")})

    result = vd.validate_run_inputs(event, settings=SETTINGS, s3=s3)["scoreFile"]

    assert (result["parts"], result["columns"], result["sampledRows"], result["header"]) == (1, 2, 2, "id,x")


def test_the_parts_summary_is_whole_only_when_every_part_is(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vd, "SAMPLE_BYTES", 12)
    s3, event = parts({"a.csv": b"id,x\n1,1\n", "b.csv": b"id,x\n3,3\n4,4\n5,5\n"})

    result = vd.check_score_parts(s3, vd.parse_s3_uri(event["scoreUri"]), SCHEMA, SETTINGS)

    assert (result["sampleIsWholeFile"], result["sampledRows"]) == (False, 2)


def test_gzip_parts_are_summarised_as_gzip() -> None:
    s3, event = parts({"a.csv.gz": gz(b"id,x\n1,1\n"), "b.csv.gz": gz(b"id,x\n2,2\n")})

    result = vd.check_score_parts(s3, vd.parse_s3_uri(event["scoreUri"]), SCHEMA, SETTINGS)

    assert (result["compressed"], result["compressionType"], result["parts"]) == (True, "Gzip", 2)


def test_a_part_that_is_not_csv_is_named() -> None:
    s3, event = parts({"a.csv": b"id,x\n1,1\n", "b.json": b"{}"})

    assert refusal(lambda: vd.validate_run_inputs(event, settings=SETTINGS, s3=s3)) == (
        f"s3://{BUCKET}/p/ holds b.json, which is not a .csv or .csv.gz part"
    )


def test_parts_with_different_headers_quote_both_up_to_200_characters() -> None:
    long_a = "id,x," + ",".join(f"a{i:03}" for i in range(60))
    long_b = "id,x," + ",".join(f"b{i:03}" for i in range(60))
    row = "1,1," + ",".join("0" for _ in range(60))
    s3, event = parts({"a.csv": table([row], header=long_a), "b.csv": table([row], header=long_b)})

    assert refusal(lambda: vd.validate_run_inputs(event, settings=SETTINGS, s3=s3)) == (
        f"the parts of s3://{BUCKET}/p/ must share one header: b.csv has {long_b[:200]!r}, "
        f"a.csv has {long_a[:200]!r}"
    )


@pytest.mark.parametrize(
    ("first", "second", "kinds"), [(False, True, ("gzip", "plain")), (True, False, ("plain", "gzip"))]
)
def test_parts_mixing_gzip_and_plain_name_each_ones_kind(
    first: bool, second: bool, kinds: tuple[str, str]
) -> None:
    body = b"id,x\n1,1\n"
    s3, event = parts(
        {
            "a.csv.gz" if first else "a.csv": gz(body) if first else body,
            "b.csv.gz" if second else "b.csv": gz(body.replace(b"1,1", b"2,2")) if second else body,
        }
    )
    names = ("b.csv.gz" if second else "b.csv", "a.csv.gz" if first else "a.csv")

    assert refusal(lambda: vd.validate_run_inputs(event, settings=SETTINGS, s3=s3)) == (
        f"the parts of s3://{BUCKET}/p/ must all be gzip or all plain CSV: {names[0]} is {kinds[0]}, "
        f"{names[1]} is {kinds[1]}"
    )


def test_each_part_is_checked_for_scoring() -> None:
    s3, event = parts({"a.csv": b"id,x\n1,1\n", "b.csv": b"id,x\n2,two\n"})

    assert refusal(lambda: vd.validate_run_inputs(event, settings=SETTINGS, s3=s3)) == (
        f"s3://{BUCKET}/p/b.csv column 'x' must be numeric; line 2 has 'two'"
    )


class _Metrics:
    def __init__(self) -> None:
        self.added: list[dict[str, Any]] = []

    def add_metric(self, **kwargs: Any) -> None:
        self.added.append(kwargs)


def handler_with(monkeypatch: pytest.MonkeyPatch, s3: _S3) -> tuple[_Metrics, list[tuple[str, Any]]]:
    import aws_clients

    recorded = _Metrics()
    warnings: list[tuple[str, Any]] = []
    monkeypatch.setattr(vd, "load_settings", lambda: SETTINGS)
    monkeypatch.setattr(aws_clients, "client", lambda name: s3 if name == "s3" else None)
    monkeypatch.setattr(vd.metrics, "add_metric", recorded.add_metric)
    monkeypatch.setattr(vd.logger, "warning", lambda message, extra=None: warnings.append((message, extra)))
    return recorded, warnings


def test_the_handler_counts_an_accepted_run(monkeypatch: pytest.MonkeyPatch) -> None:
    s3 = run_s3({"d.csv": table(mixed(2))})
    recorded, warnings = handler_with(monkeypatch, s3)

    result = vd.handler({"run": run("d.csv", "d.csv")}, None)

    assert result["dataset"]["uri"] == f"s3://{BUCKET}/d.csv"
    assert recorded.added == [{"name": "DatasetsAccepted", "unit": vd.MetricUnit.Count, "value": 1}]
    assert warnings == []


def test_the_handler_counts_and_logs_a_rejection_and_raises_it(monkeypatch: pytest.MonkeyPatch) -> None:
    s3 = run_s3({"d.csv": table(["1,1,NO"])})
    recorded, warnings = handler_with(monkeypatch, s3)

    with pytest.raises(InvalidDataset) as caught:
        vd.handler({"run": run("d.csv", "d.csv")}, None)

    reason = f"s3://{BUCKET}/d.csv has 1 data row; at least 2 needed for training"
    assert str(caught.value) == reason
    assert recorded.added == [{"name": "DatasetsRejected", "unit": vd.MetricUnit.Count, "value": 1}]
    assert warnings == [("dataset rejected", {"reason": reason})]
