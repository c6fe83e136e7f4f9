"""The console in a real browser: Debian's headless Chromium driven by Playwright for Python.

One `python -m emulator api` (the README's command) serves the console and the API from a fresh state
directory holding two datasets: a 3,000-row slice of the bundled data (trains, scores, drifts) and a
file too small to evaluate (its run fails at ValidateDataset, with a cause to show). Screenshots of
every page go to .local/screenshots/console/ (gitignored) for a person to look at.

Chromium must be installed (`make console-browser`, run by `make test`): when it is missing the tests
fail and say so; they do not skip.
"""

from __future__ import annotations

import gzip
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

PROJECT = Path(__file__).resolve().parents[2]
SCREENSHOTS = PROJECT / ".local" / "screenshots" / "console"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium's own connections are refused on a closed network
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DATASET = PROJECT / "data" / "diabetic_data.csv.gz"


def write_slice(path: Path, rows: int) -> Path:
    """The first `rows` rows of the bundled dataset with its header, as plain CSV."""
    with gzip.open(DATASET, "rt") as source, open(path, "w") as target:
        target.write(source.readline())
        for index, line in enumerate(source):
            if index >= rows:
                break
            target.write(line)
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _seed_state(state_dir: Path, datasets: list[Path]) -> None:
    """Put datasets in the local bucket without starting a run (as files uploaded earlier)."""
    from emulator.progress import Progress
    from emulator.runtime import LocalRuntime

    with LocalRuntime(state_dir=state_dir, progress=Progress(verbose_jobs=False)) as runtime:
        for path in datasets:
            runtime.put_file(path, runtime.datasets_prefix)


@pytest.fixture(scope="session")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """slice.csv trains (3,000 rows); tiny.csv (40 rows) is too small to evaluate; score.csv (500 rows)
    is a file to score, uploaded from the form; upload.csv (the same 3,000 rows) is a dataset uploaded
    from the form."""
    folder = tmp_path_factory.mktemp("console-data")
    return {
        "slice": write_slice(folder / "slice.csv", 3000),
        "tiny": write_slice(folder / "tiny.csv", 40),
        "score": write_slice(folder / "score.csv", 500),
        "upload": write_slice(folder / "upload.csv", 3000),
    }


@pytest.fixture(scope="session")
def console_url(tmp_path_factory: pytest.TempPathFactory, files: dict[str, Path]) -> Iterator[str]:
    """The base URL of a running `python -m emulator api` (stopped, by its own pid, at the end)."""
    if not (PROJECT / "console" / "node_modules" / "chart.js").is_dir():
        pytest.fail("console/node_modules is missing: run `make console-deps` (npm ci --prefix console)")
    state_dir = tmp_path_factory.mktemp("console-state")
    _seed_state(state_dir, [files["slice"], files["tiny"]])
    port = _free_port()
    log = (tmp_path_factory.mktemp("console-log") / "api.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emulator",
            "api",
            "--port",
            str(port),
            "--state-dir",
            str(state_dir),
            "--quiet",
        ],
        cwd=PROJECT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/config.json", timeout=5):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"`python -m emulator api` did not start: see {log.name}")
                time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).is_file() and shutil.which("chromium") is None:
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: run `make console-browser` (apt-get install chromium)"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        pytest.fail(f"Playwright for Python is not installed ({exc}): it is in requirements/dev.txt")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium"),
            args=CHROMIUM_ARGS,
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, console_url: str) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=console_url)
    context.set_default_timeout(30_000)
    opened = context.new_page()
    yield opened
    context.close()


@pytest.fixture(scope="session")
def shots() -> Any:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(page: Any, name: str) -> None:
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)

    return take
