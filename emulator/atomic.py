"""moto's DynamoDB backend, one request at a time, as DynamoDB applies each request atomically.

The local runtime runs several executions' Lambda handlers on threads of one process, and moto's
DynamoDB backend is plain dicts with no lock. A TransactWriteItems deep-copies the tables it writes
(to roll back on a failed condition); another thread's PutItem during that copy made it fail with
"dictionary changed size during iteration", and RegisterModel's run FAILED with an error AWS never
gives (two uploads trained at once, seen in a random-order run of the suite). The lock is held only
while moto handles one DynamoDB request, which calls no other service, so it cannot deadlock.

moto is imported on install, not here: the runtime imports moto only once it opens its stack.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

_request_lock = threading.Lock()
_install_lock = threading.Lock()
_installed = 0
_original: Callable[[Any], Any] | None = None


def _call_action(self: Any) -> Any:
    assert _original is not None
    with _request_lock:
        return _original(self)


def install() -> None:
    global _installed, _original
    from moto.dynamodb.responses import DynamoHandler

    with _install_lock:
        if _installed == 0:
            _original = DynamoHandler.call_action
            DynamoHandler.call_action = _call_action  # type: ignore[method-assign]
        _installed += 1


def uninstall() -> None:
    global _installed
    from moto.dynamodb.responses import DynamoHandler

    with _install_lock:
        if _installed == 0:
            return
        _installed -= 1
        if _installed == 0:
            DynamoHandler.call_action = _original  # type: ignore[method-assign]
