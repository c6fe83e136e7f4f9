"""Resilience fixtures: one local runtime for the whole folder, the baseline champion, notifications,
and the `resilience_row` fixture that feeds `docs/resilience.md` (see table.py).

The runtime lives for the package (not the session) so the other folders' runtimes never overlap it:
moto's backends and the interpreter seam are process-wide. State accumulates across the scenarios, so
every assertion is about what one scenario changed (snapshots before and after), never absolute counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from emulator.progress import Progress
from emulator.runtime import LocalRuntime

from .stack import PROJECT, Notifications, dataset_lines, write_csv
from .table import WRITE_OPTION, ResilienceTable, Row

PLUGIN_NAME = "resilience-table"
BASELINE_ROWS = 3000
# The gate (MIN_ROC_AUC, MAX_AUC_DROP) is not what these scenarios test: every model passes it unless a
# scenario says otherwise, so "approved" never depends on which slice a scenario trained on. The fastest
# estimator keeps each training job to seconds; the jobs' Retry back-off (30 s, 120 s) runs without
# its waits (`retry_wait_scale=0`).
PARAMETERS = {
    "DefaultAlgorithm": "LogisticRegression",
    "MinRocAuc": "0.5",
    "MaxAucDrop": "1",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        WRITE_OPTION,
        action="store_true",
        default=False,
        help="write docs/resilience.md from the rows this run observed (instead of checking it)",
    )


def pytest_configure(config: pytest.Config) -> None:
    if not config.pluginmanager.has_plugin(PLUGIN_NAME):
        config.pluginmanager.register(ResilienceTable(config), PLUGIN_NAME)


@pytest.fixture
def resilience_row(request: pytest.FixtureRequest) -> Callable[[Row], None]:
    """Record this test's row of the published table (kept only if the test passes)."""
    plugin: ResilienceTable = request.config.pluginmanager.get_plugin(PLUGIN_NAME)
    return lambda row: plugin.record(request.node.nodeid, row)


@pytest.fixture(scope="package")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRuntime]:
    with LocalRuntime(
        PROJECT,
        tmp_path_factory.mktemp("resilience-state"),
        parameters=PARAMETERS,
        progress=Progress(verbose_jobs=False),
        retry_wait_scale=0.0,
    ) as rt:
        yield rt


@pytest.fixture(scope="package")
def notifications(runtime: LocalRuntime) -> Notifications:
    return Notifications(runtime)


@pytest.fixture(scope="package")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("resilience-data")


@pytest.fixture(scope="package")
def baseline(runtime: LocalRuntime, notifications: Notifications, data_dir: Path) -> dict[str, Any]:
    """The first upload: a UTF-8 BOM and CRLF line ends (as Excel on Windows saves CSV). It must simply
    work, and it makes the champion every later scenario must leave alone."""
    header, lines = dataset_lines(0, BASELINE_ROWS)
    path = write_csv(data_dir / "excel_export.csv", header, lines, newline="\r\n", bom=True)
    event = runtime.trigger.upload(str(path), runtime.datasets_prefix + path.name)[0]
    record = runtime.run(event)
    assert record["status"] == "SUCCEEDED", record["cause"]
    return {"record": record, "event": event, "path": path}


@pytest.fixture
def slice_file(data_dir: Path) -> Callable[[str, int, int], Path]:
    """A plain CSV of rows [start, start + rows) of the bundled dataset, named `<name>.csv`."""

    # 3000 rows: enough for the training job's minimum evaluation (pipelines/schema.py
    # MIN_HELD_OUT_ROWS: a dataset of at least 1,000 usable rows with 250 of each outcome).
    def make(name: str, start: int, rows: int = 3000) -> Path:
        header, lines = dataset_lines(start, rows)
        return write_csv(data_dir / f"{name}.csv", header, lines)

    return make
