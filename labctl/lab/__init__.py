"""The lab file: model, loading with file:line problems, validation, expansion, image catalog.

One loader (files.py) reads the lab file, the image catalog and the template listing; model, validate and
resolve work on what it read and are pure. No network, no host.
"""

from typing import Any

from labctl.lab.files import (
    catalog_for,
    gather,
    image_search_dirs,
    load_catalog,
    load_lab,
    resolve_lab,
    template_search_dirs,
    validate,
    validate_text,
)
from labctl.lab.images import ImageCatalog
from labctl.lab.model import (
    ImageEntry,
    LabFile,
    ResolvedLab,
    ResolvedNetwork,
    ResolvedRemoteHost,
    ResolvedSimHost,
    ResolvedVm,
    SecretSource,
)
from labctl.lab.paths import lab_state_dir, sim_state_dir
from labctl.lab.secrets import (
    GENERATED_PASSWORD_FILE,
    generate_password,
    guest_password_source,
    password_problems,
    sim_guest_password,
)
from labctl.lab.sizes import format_size, parse_size
from labctl.lab.validate import (
    Lab,
    analyze,
    computer_name_problems,
    expand,
    expand_names,
    overlapping_prefixes,
    static_mac,
)


def lab_json_schema() -> dict[str, Any]:
    """The lab file's JSON schema (see labctl.lab.schema)."""
    from labctl.lab.schema import lab_json_schema as _schema  # lazy: `python -m labctl.lab.schema` stays clean

    return _schema()


__all__ = [
    "GENERATED_PASSWORD_FILE",
    "ImageCatalog",
    "ImageEntry",
    "Lab",
    "LabFile",
    "ResolvedLab",
    "ResolvedNetwork",
    "ResolvedRemoteHost",
    "ResolvedSimHost",
    "ResolvedVm",
    "SecretSource",
    "analyze",
    "catalog_for",
    "computer_name_problems",
    "expand",
    "expand_names",
    "format_size",
    "gather",
    "generate_password",
    "guest_password_source",
    "image_search_dirs",
    "lab_json_schema",
    "lab_state_dir",
    "load_catalog",
    "load_lab",
    "overlapping_prefixes",
    "parse_size",
    "password_problems",
    "resolve_lab",
    "sim_guest_password",
    "sim_state_dir",
    "static_mac",
    "template_search_dirs",
    "validate",
    "validate_text",
]
