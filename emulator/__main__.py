"""`python -m emulator`: see emulator/cli.py."""

import atexit
import os
import sys
import threading

from emulator.cli import main


def _exit_now(code: int) -> None:
    """Exit without tearing the interpreter down, when nothing is left to wait for.

    Finalising the modules a run imports (moto, botocore, the handlers' libraries) takes about a
    second and does nothing for the user: every file the run writes is closed and renamed into
    place before `main` returns. The exit handlers still run and the streams are flushed. With a
    non-daemon thread still alive (none of ours), the normal exit waits for it instead.
    """
    if any(t is not threading.main_thread() and not t.daemon for t in threading.enumerate()):
        sys.exit(code)
    atexit._run_exitfuncs()  # logging.shutdown among them
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


_exit_now(main())
