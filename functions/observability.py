"""Logger, Metrics and Tracer wiring shared by every handler.

The Tracer is created on the first invocation, not at import: instantiating it loads the X-Ray SDK and
botocore (about half a second), and module import must stay cheap. Handlers may be called with a
context of None (the local runtime, tests); the Lambda-context keys are then simply not logged.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

__all__ = ["Logger", "MetricUnit", "Metrics", "instrument"]

DEFAULT_NAMESPACE = "ReadmissionMLOps"

Handler = Callable[[dict[str, Any], Any], Any]


@functools.lru_cache(maxsize=1)
def _tracer() -> Any:
    from aws_lambda_powertools import Tracer

    return Tracer()


def instrument(logger: Logger, metrics: Metrics) -> Callable[[Handler], Handler]:
    """Decorate a handler: Lambda context in the logs, one metrics flush per call, X-Ray tracing."""

    def decorate(handler: Handler) -> Handler:
        traced: list[Handler] = []

        @functools.wraps(handler)
        def wrapper(event: dict[str, Any], context: Any) -> Any:
            if not traced:
                traced.append(_tracer().capture_lambda_handler(handler))
            if metrics.namespace is None:
                # Metrics read the namespace at import; a host that sets the environment later (tests,
                # the local runtime) must not lose a run over a metrics setting.
                metrics.namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", DEFAULT_NAMESPACE)
            if context is not None and hasattr(context, "aws_request_id"):
                logger.append_keys(request_id=context.aws_request_id)
            else:  # keys persist between invocations: never log a previous request's id
                logger.remove_keys(["request_id"])
            try:
                return traced[0](event, context)
            finally:
                if metrics.provider.metric_set:  # a handler that failed early has nothing to publish
                    metrics.flush_metrics()

        return wrapper

    return decorate
