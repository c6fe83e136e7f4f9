"""Shared fixtures: the fixture project (a miniature stack) and one runtime on it per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from emulator.progress import Progress
from emulator.runtime import LocalRuntime

FIXTURE_PROJECT = Path(__file__).parent / "fixtures" / "project"


@pytest.fixture(scope="module")
def fixture_project() -> Path:
    return FIXTURE_PROJECT


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "small.csv"
    path.write_text("id,x,y\n1,2,3\n4,5,6\n7,8,9\n")
    return path


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    """One runtime for a module (moto and the interpreter seam are process-wide: one at a time).

    The training state keeps the fixture template's generous TimeoutSeconds (120 s), so a busy machine
    never times a real training out; the timeout itself is tested with a hanging job in
    test_state_timeout.py."""
    state_dir = tmp_path_factory.mktemp("state")
    with LocalRuntime(FIXTURE_PROJECT, state_dir, progress=Progress(verbose_jobs=False)) as rt:
        yield rt
