"""docs/openapi.json, the document the schemathesis fuzz run follows, agrees with the code it describes:
it is what emulator/openapi.py builds from functions/input.schema.json, and its routes are the
template's `Type: Api` events and the routes functions/api.py serves."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from emulator import openapi
from emulator.template import load_stack

PROJECT = Path(__file__).resolve().parents[2]


def _shape(path: str) -> str:
    """A route with its parameter names erased: `/models/{name}/{version}` and `/models/<a>/<b>` agree."""
    return re.sub(r"\{[^}]+\}|<[^>]+>", "{}", path)


def document_routes() -> set[tuple[str, str]]:
    document = json.loads(openapi.DOCUMENT.read_text())
    return {(method.upper(), _shape(path)) for path, item in document["paths"].items() for method in item}


def handler_routes() -> set[tuple[str, str]]:
    """The `@app.get("...")` / `@app.post("...")` routes of functions/api.py (read, not imported: the
    handler's imports are the Lambda package's)."""
    tree = ast.parse((PROJECT / "functions" / "api.py").read_text())
    routes = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            for decorator in node.decorator_list:
                if (
                    isinstance(decorator, ast.Call)
                    and isinstance(decorator.func, ast.Attribute)
                    and isinstance(decorator.func.value, ast.Name)
                    and decorator.func.value.id == "app"
                    and decorator.func.attr in {"get", "post", "put", "delete", "patch"}
                ):
                    path = decorator.args[0]
                    assert isinstance(path, ast.Constant)
                    routes.add((decorator.func.attr.upper(), _shape(str(path.value))))
    return routes


def template_routes() -> set[tuple[str, str]]:
    stack = load_stack(PROJECT, {})
    return {
        (str(event["Properties"]["Method"]).upper(), _shape(event["Properties"]["Path"]))
        for spec in stack.functions.values()
        for event in spec.events.values()
        if event.get("Type") == "Api"
    }


def test_the_committed_document_is_the_one_built_from_the_input_schema() -> None:
    assert openapi.DOCUMENT.read_text() == openapi.render(openapi.build()), (
        f"docs/openapi.json is stale: run `{openapi.REGENERATE}`"
    )


def test_the_training_body_is_the_input_schemas_training_request() -> None:
    document = json.loads(openapi.DOCUMENT.read_text())
    input_schema = json.loads((PROJECT / "functions" / "input.schema.json").read_text())

    body = document["paths"]["/training"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/TrainingRequest"}
    assert document["components"]["schemas"]["TrainingRequest"] == input_schema["oneOf"][0]


def test_the_document_the_template_and_the_handler_name_the_same_routes() -> None:
    assert document_routes() == template_routes() == handler_routes()
    assert len(document_routes()) == 12


def test_a_changed_input_schema_changes_the_document() -> None:
    """The drift check can fail: a schema edit shows in what is built."""
    input_schema = json.loads((PROJECT / "functions" / "input.schema.json").read_text())
    input_schema["oneOf"][0]["properties"]["modelName"]["maxLength"] = 10

    rebuilt = openapi.build(input_schema)

    assert openapi.render(rebuilt) != openapi.DOCUMENT.read_text()
    name = rebuilt["paths"]["/models/{name}/{version}"]["get"]["parameters"][0]
    assert name["schema"]["maxLength"] == 10
