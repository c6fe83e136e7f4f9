"""The two errors a user can fix: bad input data and bad configuration.

Kept free of scikit-learn so the training job can reject bad data before loading the heavy
libraries (a failed job reports its reason in about a second).
"""


class DatasetError(ValueError):
    """Input data that cannot be used; `code` is stable, the message says what to fix."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"Invalid dataset ({code}): {message}")
        self.code = code


class ConfigError(ValueError):
    """A hyperparameter the job cannot use (unknown algorithm, value of the wrong type)."""
