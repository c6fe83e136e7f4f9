"""The code bundle: what script mode, serving and the processing job need, from pipelines/ alone."""

import ast
import hashlib
import json
import tarfile
from pathlib import Path

from pipelines import bundle, container, schema

PIPELINES_DIR = Path(__file__).resolve().parents[2] / "pipelines"


def test_sourcedir_holds_the_package_entry_modules_and_requirements(tmp_path):
    paths = bundle.build(str(tmp_path))
    with tarfile.open(paths["sourcedir"]) as tar:
        names = set(tar.getnames())
    assert {"train.py", "inference.py", "drift.py", "requirements.txt"} <= names
    assert {
        "pipelines/__init__.py",
        "pipelines/schema.py",
        "pipelines/train.py",
        "pipelines/inference.py",
    } <= names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert not any(n.startswith(("tests/", "/")) or ".." in n for n in names)


def test_unpacked_src_matches_the_archive(tmp_path):
    paths = bundle.build(str(tmp_path))
    with tarfile.open(paths["sourcedir"]) as tar:
        for member in tar.getmembers():
            packed = tar.extractfile(member).read()
            assert (Path(paths["src"]) / member.name).read_bytes() == packed


def test_requirements_list_only_what_the_container_lacks_pinned(tmp_path):
    paths = bundle.build(str(tmp_path))
    text = (Path(paths["src"]) / "requirements.txt").read_text()
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines == list(container.EXTRA_REQUIREMENTS)
    assert all("==" in line for line in lines)
    assert not any(line.split("==")[0] in ("scikit-learn", "pandas", "numpy") for line in lines)


def test_dataset_schema_json_is_the_schema_module(tmp_path):
    paths = bundle.build(str(tmp_path))
    written = json.loads(Path(paths["dataset_schema"]).read_text())
    assert written == schema.as_json_dict()
    assert written["excluded_discharge_dispositions"] == [11, 13, 14, 19, 20, 21]
    assert len(written["columns"]) == 50
    assert set(written["required_scoring_columns"]) <= set(written["columns"])
    assert written["target_values"] == ["NO", ">30", "<30"]


def test_container_json_declares_the_framework_version(tmp_path):
    paths = bundle.build(str(tmp_path))
    declared = json.loads(Path(paths["container"]).read_text())
    assert declared["framework_version"] == "1.2-1"
    assert declared["scikit_learn_version"] == "1.2.1"
    assert declared["python_version"] == "3.9"


def test_bundle_is_reproducible(tmp_path):
    first = Path(bundle.build(str(tmp_path / "a"))["sourcedir"]).read_bytes()
    second = Path(bundle.build(str(tmp_path / "b"))["sourcedir"]).read_bytes()
    assert hashlib.sha256(first).digest() == hashlib.sha256(second).digest()


def test_every_pipelines_file_parses_as_python_3_9():
    files = sorted(PIPELINES_DIR.rglob("*.py"))
    assert files
    for path in files:
        ast.parse(path.read_text(), filename=str(path), feature_version=(3, 9))


def test_generated_entry_modules_parse_as_python_3_9():
    for name, text in bundle.ENTRY_MODULES.items():
        ast.parse(text, filename=name, feature_version=(3, 9))


def test_schema_module_uses_only_the_standard_library():
    tree = ast.parse((PIPELINES_DIR / "schema.py").read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in (node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")])
    }
    assert imported <= {"typing", "__future__"}
