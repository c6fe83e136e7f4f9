"""The local runtime: the same ASL, template and code as AWS, on one machine (see docs/architecture.md)."""
