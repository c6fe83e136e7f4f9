"""Errors the state machine branches on.

Lambda reports an unhandled exception's class name as `errorType`, and Step Functions uses it as the
ASL error name, so each class here is named exactly as the ASL's `ErrorEquals` / the docs spell it.
"""

from __future__ import annotations


class PipelineError(Exception):
    """Base class: a failure with a message meant for the person who started the run."""


class InvalidInput(PipelineError):
    """The execution input (event, API body or console input) cannot start a run."""


class DuplicateRun(PipelineError):
    """The run's idempotency key was already claimed by another, not failed, run."""


class InvalidDataset(PipelineError):
    """The dataset or the score file fails the cheap checks made before paying for compute."""


class InvalidModelArtifact(PipelineError):
    """The training job's model.tar.gz lacks a readable metrics.json."""


class RunNotFound(PipelineError):
    """The registry has no record of the run an outcome is reported for."""


class ReportNotPublished(PipelineError):
    """The training job's report could not be copied to the version's reports/ prefix."""
