"""JSON schema of the lab file for editors (yaml-language-server: $schema=...).

schemas/lab.schema.json is generated from the models: ``python -m labctl.lab.schema`` rewrites it, and a unit
test fails when the committed file is stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from labctl.lab.images import PACKAGE_ROOT
from labctl.lab.model import LabFile

SCHEMA_ID = "https://labctl.dev/schemas/lab.schema.json"
SCHEMA_PATH = PACKAGE_ROOT / "schemas" / "lab.schema.json"


def lab_json_schema() -> dict[str, Any]:
    """The lab file's JSON schema (draft 2020-12), from the pydantic models."""
    schema = LabFile.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def schema_text() -> str:
    """The schema as the committed file holds it (sorted keys, 2-space indent, final newline)."""
    return json.dumps(lab_json_schema(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the schema to ``argv[0]`` or schemas/lab.schema.json."""
    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0]) if args else SCHEMA_PATH
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(schema_text(), encoding="utf-8")
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
