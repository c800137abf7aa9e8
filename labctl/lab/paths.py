"""Where a lab's companions live: template names and the lab's state directory. Pure path arithmetic
(the directories searched for images and templates are the loader's: labctl.lab.files)."""

from __future__ import annotations

from pathlib import Path

STATE_DIR_NAME = ".labctl"


def unattend_template_name(name: str) -> str:
    """Loader name of an unattend template: ``default`` -> ``unattend/default.xml.j2``."""
    return f"unattend/{name}.xml.j2"


def lab_state_dir(lab_file: str | Path, lab_name: str) -> Path:
    """``.labctl/<name>`` beside the lab file (journal, lock, generated guest password, simulator state)."""
    return Path(lab_file).resolve().parent / STATE_DIR_NAME / lab_name


def sim_state_dir(lab_file: str | Path, lab_name: str) -> Path:
    """Where the embedded simulator keeps this lab's host state."""
    return lab_state_dir(lab_file, lab_name) / "sim"
