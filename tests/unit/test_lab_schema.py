"""The committed JSON schema matches the models, and the shipped labs fit it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from clirun import labctl

from labctl.lab import lab_json_schema
from labctl.lab.schema import SCHEMA_PATH, schema_text
from labctl.resources import resource_dir

REPO = Path(__file__).resolve().parents[2]


def test_committed_schema_is_current() -> None:
    assert resource_dir("schemas") / "lab.schema.json" == SCHEMA_PATH
    assert SCHEMA_PATH.read_text(encoding="utf-8") == schema_text(), \
        "regenerate with: labctl validate --schema > schemas/lab.schema.json"


def test_schema_shape() -> None:
    schema = lab_json_schema()
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"name", "network", "vms"}
    vm = schema["$defs"]["VmEntry"]
    assert vm["additionalProperties"] is False and "count" in vm["properties"]
    memory = json.dumps(vm["properties"]["memory"])
    assert "GiB" in memory  # sizes are strings with units


@pytest.mark.parametrize("lab", sorted((resource_dir("labs")).glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_labs_fit_the_schema(lab: Path) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(yaml.safe_load(lab.read_text(encoding="utf-8")), lab_json_schema())


def test_schema_refuses_an_unknown_key() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    bad = {"name": "x", "network": {"subnet": "10.0.0.0/24"}, "vms": [{"name": "a", "procesors": 2}]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, lab_json_schema())


def test_validate_schema_prints_exactly_the_committed_file() -> None:
    # What the docs tell a maintainer to run: `labctl validate --schema > labctl/resources/schemas/lab.schema.json`.
    result = labctl("validate", "--schema", catch_exceptions=True)
    assert result.exit_code == 0, result.output
    assert result.output == SCHEMA_PATH.read_text(encoding="utf-8")
