"""Lambda handler tests (a package: see tests/__init__.py); shared helpers in tests/functions/helpers.py."""
