"""Suite-wide hooks: the random order kept per folder, and the seed that replays it.

pytest-randomly (a dev dependency) shuffles the modules, the classes and the tests of every run from one
seed. Its shuffle interleaves the folders' modules; each folder's expensive package-scoped fixtures (the
resilience runtime and its trained champion) would then be torn down and built again every time another
folder's module comes between two of its modules. So, after the shuffle, the items are regrouped by
folder (a stable sort: the folders in the order the shuffle first reached them, each folder's modules
and tests in their shuffled order). The order is still new every run and reproducible from the seed.
"""

from __future__ import annotations

import pytest


def _folder(item: pytest.Item) -> str:
    """The top-level test folder of an item (`tests/e2e/test_x.py::t` -> `e2e`)."""
    parts = item.nodeid.split("::", 1)[0].split("/")
    return parts[1] if len(parts) > 2 and parts[0] == "tests" else ""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep each folder's tests together, in the order pytest-randomly (a wrapper: it runs first) gave."""
    first_seen: dict[str, int] = {}
    for item in items:
        first_seen.setdefault(_folder(item), len(first_seen))
    items.sort(key=lambda item: first_seen[_folder(item)])


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Repeat the seed at the end (the header that shows it is hidden by -q) so a failure replays."""
    seed = getattr(config.option, "randomly_seed", None)
    if isinstance(seed, int) and config.getoption("randomly_reorganize", True):
        terminalreporter.write_line(
            f"random order: --randomly-seed={seed} (pass it to pytest to replay this order; "
            "-p no:randomly runs in file order)"
        )
