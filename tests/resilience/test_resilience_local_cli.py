"""Bad input to the local runtime itself gets a clear error where the user sees it.

Run as a separate process: the package's runtime (conftest) owns moto and the interpreter seam in this
one, and a second runtime may not start beside it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .stack import PROJECT, dataset_lines, write_csv

EXIT_USAGE = 2


def test_an_unknown_environment_override_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    header, lines = dataset_lines(0, 50)
    dataset = write_csv(tmp_path / "small.csv", header, lines)

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "emulator",
            "run",
            "--dataset",
            str(dataset),
            "--state-dir",
            str(tmp_path / "state"),
            "--env",
            "NOT_A_FUNCTION_VARIABLE=1",
        ],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert "NOT_A_FUNCTION_VARIABLE" in done.stderr
    assert "Traceback" not in done.stderr, done.stderr[-600:]  # the start-up error, not a crash in clean-up
    assert done.returncode == EXIT_USAGE
