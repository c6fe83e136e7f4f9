"""Every boto3 call made as a stack role is checked as AWS checks it, before moto answers it.

`install(roles)` wraps `botocore.client.BaseClient._make_api_call`, the one place every client of
every session passes through (a session created before the runtime, or a client a handler cached,
cannot slip past it). For a call made while a thread acts as a role (`iam.acting_as`):

1. the parameters are validated against botocore's service model as the service validates them
   (`service_models.validate`: enums, lengths, patterns, ranges): `ValidationException` (not for
   S3, whose SDK parameters botocore rewrites later and which names its errors itself);
2. the request is authorised against the role's policies (`iam.authorize`): `AccessDenied` (S3) or
   `AccessDeniedException`, naming the role, the action and the resource.

Calls without a role (the runtime's own plumbing) go straight through.
"""

from __future__ import annotations

import threading
from typing import Any

from botocore.client import BaseClient
from botocore.exceptions import ClientError

from emulator import iam, service_models

_ORIGINAL_MAKE_API_CALL = BaseClient._make_api_call
_lock = threading.Lock()
_installed = 0


def _make_api_call(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
    role = iam.role_of(self)
    if role is not None:
        service = self.meta.service_model.service_name
        # S3's SDK parameters are not its wire shapes (botocore rewrites CopySource, SSE keys... after
        # this point) and S3 answers its own error codes, not ValidationException: IAM only
        problems = [] if service == "s3" else service_models.validate(service, operation_name, api_params)
        if problems:
            message = str(service_models.RequestInvalid(problems))
            raise ClientError(
                {
                    "Error": {"Code": "ValidationException", "Message": message},
                    "ResponseMetadata": iam.response_metadata(400),
                },
                operation_name,
            )
        try:
            iam.authorize(role, iam.requests_for(service, operation_name, api_params))
        except iam.AccessDenied as exc:
            raise iam.denied_error(exc, service, operation_name) from None
    return _ORIGINAL_MAKE_API_CALL(self, operation_name, api_params)


def install() -> None:
    global _installed
    with _lock:
        _installed += 1
        BaseClient._make_api_call = _make_api_call  # type: ignore[method-assign]


def uninstall() -> None:
    global _installed
    with _lock:
        _installed = max(0, _installed - 1)
        if _installed == 0:
            BaseClient._make_api_call = _ORIGINAL_MAKE_API_CALL  # type: ignore[method-assign]
