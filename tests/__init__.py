"""The test suite as one package: every folder imports as `tests.<folder>`, so no two folders' `conftest`
or helper modules can shadow each other when the whole suite runs in one process (in any order)."""
