"""No secrets in the repository: every tracked file (code, events, docs, templates) is scanned for AWS
access keys, secret keys and private keys. The scanner is tested on seeded secrets, so a pass means
something. The patterns are assembled at run time so this file does not match itself.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from .stack import PROJECT
from .table import Row

AWS = "A" + "KIA|A" + "SIA"  # long-term and temporary access key id prefixes
PATTERNS = {
    "AWS access key id": re.compile(rf"\b(?:{AWS})[0-9A-Z]{{16}}\b"),
    "AWS secret access key": re.compile(
        r"(?i)(?:aws_?)?secret_?access_?key[\"']?\s*[:=]\s*[\"']?[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])"
    ),
    "private key": re.compile("-----BEGIN (?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?" + "PRIVATE KEY-----"),
}


def find_secrets(text: str) -> list[str]:
    """The names of the secret patterns that occur in text."""
    return [name for name, pattern in PATTERNS.items() if pattern.search(text)]


def tracked_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [PROJECT / name for name in listed.split("\0") if name]


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("aws_access_key_id = " + "AKIA" + "Q3EGRIZ7XW2MBNPL", ["AWS access key id"]),
        (
            '"SecretAccessKey": "' + "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "EXAMPLEKEY" + '"',
            ["AWS secret access key"],
        ),
        (
            "aws_secret_access_key=" + "wJalrXUtnFEMI/K7MDENG/bPxRfiCY" + "EXAMPLEKEY",
            ["AWS secret access key"],
        ),
        ("-----BEGIN RSA " + "PRIVATE KEY-----\nMIIE...", ["private key"]),
        ("AWS_ACCESS_KEY_ID=testing  # moto's fake credentials", []),
    ],
)
def test_the_scanner_finds_seeded_secrets(text: str, found: list[str]) -> None:
    assert find_secrets(text) == found


def test_no_tracked_file_holds_a_secret(resilience_row: Callable[[Row], None]) -> None:
    files = [p for p in tracked_files() if p.is_file()]
    findings = []
    for path in files:
        data = path.read_bytes()
        if b"\x00" in data[:8192]:
            continue  # binary (the gzipped dataset): no key is stored in it as text
        for name in find_secrets(data.decode("utf-8", "replace")):
            findings.append(f"{path.relative_to(PROJECT)}: {name}")

    assert len(files) > 50  # the repository really was listed
    assert findings == []
    resilience_row(
        Row(
            "Security",
            "No secrets in code or events",
            "every tracked or unignored text file scanned for AWS key ids, secret keys, private keys",
            "passed",
            "-",
            "no match (the scanner finds seeded keys of each kind)",
            "-",
            "-",
        )
    )
