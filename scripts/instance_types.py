"""Write functions/instance_types.json: the instance types each SageMaker operation the pipeline calls
accepts, from the pinned botocore's service model; and the same training list as the instanceType enum
of functions/input.schema.json, so botocore's model is the one source of both.

The functions validate instance types against this file rather than botocore's model: loading the
sagemaker model costs some 100-170 ms of a cold start (on top of importing botocore), the file a
fraction of a millisecond. tests/functions/test_instance_types.py fails when the files and the pinned
botocore disagree; run `python scripts/instance_types.py` after upgrading botocore.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

PATH = Path(__file__).resolve().parents[1] / "functions" / "instance_types.json"
SCHEMA_PATH = PATH.with_name("input.schema.json")
# field of the run -> (operation, member path to its InstanceType)
FIELDS = {
    "training": ("CreateTrainingJob", ("ResourceConfig", "InstanceType")),
    "transform": ("CreateTransformJob", ("TransformResources", "InstanceType")),
    "processing": ("CreateProcessingJob", ("ProcessingResources", "ClusterConfig", "InstanceType")),
}


def instance_types_document() -> dict[str, Any]:
    """The file's content as the installed botocore's sagemaker model defines it."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    document: dict[str, Any] = {}
    for kind, (operation, members) in FIELDS.items():
        shape = model.operation_model(operation).input_shape
        for member in members:
            shape = shape.members[member]
        document[kind] = {
            "operation": f"{operation} {'.'.join(members)}",
            "shape": shape.name,
            "values": list(shape.enum),  # botocore's order: by family, then size
        }
    return document


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=1) + "\n"


def schema_with_instance_types(schema_text: str, document: dict[str, Any]) -> str:
    """The input schema's text with the training request's instanceType enum set to `document`'s."""
    schema = json.loads(schema_text)
    schema["oneOf"][0]["properties"]["instanceType"]["enum"] = document["training"]["values"]
    return json.dumps(schema, indent=2) + "\n"


def main() -> int:
    document = instance_types_document()
    PATH.write_text(render(document))
    SCHEMA_PATH.write_text(schema_with_instance_types(SCHEMA_PATH.read_text(), document))
    print(f"wrote {PATH} and {SCHEMA_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
