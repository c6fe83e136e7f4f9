"""Print the PATH prefix under which `sam build` finds a Python for the template's Lambda runtime.

SAM's python builder looks for `python3.X` (X from `Runtime: python3.X` in template.yaml) on PATH and
refuses to build without it. On these machines the newer Pythons are pyenv versions, whose shims fail
for any version not selected with `pyenv global/local`: so when `python3.X` on PATH does not run, the
newest `$PYENV_ROOT/versions/3.X*/bin` is printed with a trailing `:` (use as `PATH="$(...)$PATH"`);
when it runs, nothing is printed. Exit status 1 (and a sentence on stderr) when neither exists.

`--interpreter python3.9` prints the path of that interpreter instead, found the same way (the
container-stack venv of `make test-compat` is made with it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

TEMPLATE = Path(__file__).resolve().parents[1] / "template.yaml"


def template_runtime(text: str | None = None) -> str:
    """The Globals' `Runtime: pythonX.Y` of template.yaml (every function inherits it)."""
    match = re.search(
        r"^    Runtime: (python3\.\d+)\s*$", TEMPLATE.read_text() if text is None else text, re.M
    )
    if not match:
        raise SystemExit("template.yaml has no Globals `Runtime: python3.X` line")
    return match.group(1)


def runs(executable: str) -> bool:
    found = shutil.which(executable)
    if not found:
        return False
    return subprocess.run([found, "--version"], capture_output=True, check=False).returncode == 0


def python_dir(runtime: str) -> Path | None:
    """The directory to put first on PATH for `runtime`, or None when PATH already serves it."""
    if runs(runtime):
        return None
    version = runtime.removeprefix("python")
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = sorted(
        (p.parent for p in root.glob(f"versions/{version}.*/bin/{runtime}") if p.is_file()),
        key=lambda d: [int(n) for n in re.findall(r"\d+", d.parent.name)],
    )
    if not candidates:
        raise FileNotFoundError(f"no {runtime} on PATH and none under {root}/versions/{version}.*")
    return candidates[-1]


def interpreter(executable: str) -> str:
    """The path of a `pythonX.Y` that runs: PATH's when it does, else the newest pyenv version's."""
    directory = python_dir(executable)
    found = shutil.which(executable) if directory is None else str(directory / executable)
    if not found:
        raise FileNotFoundError(f"no {executable} found")
    return found


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--interpreter"] and len(args) == 2:  # `make test-compat`: the container's python3.9
        try:
            print(interpreter(args[1]))
        except FileNotFoundError as exc:
            print(f"needed {args[1]}: {exc}", file=sys.stderr)
            return 1
        return 0
    runtime = template_runtime()
    try:
        directory = python_dir(runtime)
    except FileNotFoundError as exc:
        print(f"sam build needs {runtime} for the Lambda runtime: {exc}", file=sys.stderr)
        return 1
    print(f"{directory}{os.pathsep}" if directory else "", end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
