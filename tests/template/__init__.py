"""Template tests (a package: see tests/__init__.py)."""
