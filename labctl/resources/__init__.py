"""What labctl ships beside its code: templates, the image catalog, the lab schema and the example labs.

They travel inside the package (a wheel carries them), found through importlib.resources. A user's own
``templates/`` and ``images/`` beside a lab file override the shipped ones (labctl.lab.paths).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

KINDS = ("templates", "images", "schemas", "labs")


def resource_dir(kind: str) -> Path:
    """The shipped directory ``kind`` (one of KINDS) as a filesystem path.

    labctl is installed as files (pip and pipx unpack wheels), so the resources are real directories
    that Jinja's loader and path arithmetic can use; a zipped install is refused with a clear message.
    """
    if kind not in KINDS:
        raise ValueError(f"no shipped resource {kind!r}; choose one of {', '.join(KINDS)}")
    found = files(__name__) / kind
    path = Path(str(found))
    if not path.is_dir():
        raise RuntimeError(f"labctl's shipped {kind} are not on the filesystem ({found}): install labctl "
                           "as files (pip install, pipx install), not as a zip")
    return path
