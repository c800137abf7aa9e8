"""Where a lab's companions live: template directories and the lab's state directory. Pure path arithmetic."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from labctl.lab.images import search_dirs
from labctl.resources import resource_dir

BUNDLED_TEMPLATES_DIR = resource_dir("templates")
STATE_DIR_NAME = ".labctl"


def template_search_dirs(lab_file: str | Path | None = None,
                         explicit: Sequence[str | Path] | None = None) -> list[Path]:
    """Template roots in priority order: explicit ones only if given, else ``templates/`` beside the lab
    file, in its parent (repository layout), then labctl's own. Existing directories only."""
    return search_dirs("templates", BUNDLED_TEMPLATES_DIR, lab_file, explicit)


def unattend_template_name(name: str) -> str:
    """Loader name of an unattend template: ``default`` -> ``unattend/default.xml.j2``."""
    return f"unattend/{name}.xml.j2"


def find_template(dirs: Sequence[str | Path], loader_name: str) -> Path | None:
    """The file a Jinja FileSystemLoader over ``dirs`` would pick for ``loader_name``."""
    for d in dirs:
        p = Path(d) / loader_name
        if p.is_file():
            return p
    return None


def lab_state_dir(lab_file: str | Path, lab_name: str) -> Path:
    """``.labctl/<name>`` beside the lab file (journal, lock, generated guest password, simulator state)."""
    return Path(lab_file).resolve().parent / STATE_DIR_NAME / lab_name


def sim_state_dir(lab_file: str | Path, lab_name: str) -> Path:
    """Where the embedded simulator keeps this lab's host state."""
    return lab_state_dir(lab_file, lab_name) / "sim"
