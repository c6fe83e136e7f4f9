"""Pipeline tests (a package: see tests/__init__.py); shared builders in tests/pipelines/pipeline_cases.py."""
