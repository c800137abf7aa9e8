"""JSON schema of the lab file for editors (yaml-language-server: $schema=...).

labctl/resources/schemas/lab.schema.json is generated from the models (``labctl validate --schema > FILE``
rewrites it), and a unit test fails when the committed file is stale. Pure: nothing here writes or prints.
"""

from __future__ import annotations

import json
from typing import Any

from labctl.lab.model import LabFile
from labctl.resources import resource_dir

SCHEMA_ID = "https://labctl.dev/schemas/lab.schema.json"
SCHEMA_PATH = resource_dir("schemas") / "lab.schema.json"


def lab_json_schema() -> dict[str, Any]:
    """The lab file's JSON schema (draft 2020-12), from the pydantic models."""
    schema = LabFile.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def schema_text() -> str:
    """The schema as the committed file holds it (sorted keys, 2-space indent, final newline)."""
    return json.dumps(lab_json_schema(), indent=2, sort_keys=True) + "\n"
