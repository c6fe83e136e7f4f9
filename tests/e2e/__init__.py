"""End-to-end tests (a package: see tests/__init__.py)."""
