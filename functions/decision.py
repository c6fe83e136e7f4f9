"""The model gate's decision, one word per outcome.

EvaluateModel emits it as `decision` and the ASL's Choice compares `$.evaluation.decision` with
"approved"; the registry records it as the version's status in capitals (`version_status`), the
spelling the API and the registry's readers show.
"""

from __future__ import annotations

APPROVED = "approved"
REJECTED = "rejected"


def version_status(decision: str) -> str:
    """The registry status of a version the gate decided `decision` on."""
    return decision.upper()
