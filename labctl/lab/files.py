"""The one loader: everything labctl reads from disk to understand a lab file happens here.

It reads the lab file, the image catalog files and the template directories' listing, and checks the local
files the lab names (``docker.path``), into a LabInputs snapshot. Validation and resolution
(labctl.lab.validate) then work on that snapshot alone: pure, with no file system access.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labctl.errors import LabFileError, Problem
from labctl.lab.images import ImageCatalog, catalog_problems, image_entry
from labctl.lab.load import MAX_FILE_BYTES, LineMap, YamlSource, decode_text, parse_yaml
from labctl.lab.model import ResolvedLab
from labctl.lab.validate import Lab, analyze
from labctl.resources import resource_dir

BUNDLED_IMAGES_DIR = resource_dir("images")
BUNDLED_TEMPLATES_DIR = resource_dir("templates")


def read_yaml(path: str | Path) -> YamlSource:
    """Read and parse a YAML file; an unreadable file becomes a Problem, not an exception."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        return YamlSource(str(p), None, LineMap(), [Problem(str(p), None, "", f"cannot read file: {exc.strerror}")])
    if len(data) > MAX_FILE_BYTES:
        return YamlSource(str(p), None, LineMap(), [Problem(str(p), None, "", f"the file is {len(data)} bytes; "
                                                            f"a lab file is at most {MAX_FILE_BYTES}")])
    text, problem = decode_text(data, str(p))
    if text is None:
        assert problem is not None
        return YamlSource(str(p), None, LineMap(), [problem])
    return parse_yaml(text, str(p))


def search_dirs(kind: str, bundled: Path, lab_file: str | Path | None = None,
                explicit: Sequence[str | Path] | None = None) -> list[Path]:
    """Directories named ``kind`` ("images", "templates") in priority order: explicit ones only if given,
    else beside the lab file, in its parent (labs/ next to images/), then the shipped one. Existing only."""
    if explicit:
        candidates = [Path(d) for d in explicit]
    else:
        candidates = []
        if lab_file is not None:
            lab_dir = Path(lab_file).resolve().parent
            candidates += [lab_dir / kind, lab_dir.parent / kind]
        candidates.append(bundled)
    out: list[Path] = []
    for c in candidates:
        r = c.resolve()
        if r.is_dir() and r not in out:
            out.append(r)
    return out


def image_search_dirs(lab_file: str | Path | None = None,
                      explicit: Sequence[str | Path] | None = None) -> list[Path]:
    """The directories searched for images, in priority order (existing ones only, no duplicates)."""
    return search_dirs("images", BUNDLED_IMAGES_DIR, lab_file, explicit)


def template_search_dirs(lab_file: str | Path | None = None,
                         explicit: Sequence[str | Path] | None = None) -> list[Path]:
    """Template roots in priority order: explicit ones only if given, else ``templates/`` beside the lab
    file, in its parent, then labctl's own. Existing directories only."""
    return search_dirs("templates", BUNDLED_TEMPLATES_DIR, lab_file, explicit)


def load_catalog(dirs: Iterable[str | Path]) -> ImageCatalog:
    """Load every *.yaml / *.yml in ``dirs``; the first directory holding an id wins. Then the rules across
    files (a golden recipe's ``from:`` names an image of the catalog, no cycles)."""
    catalog = ImageCatalog()
    for d in dirs:
        for f in sorted([*Path(d).glob("*.yaml"), *Path(d).glob("*.yml")]):
            source = read_yaml(f)
            entry, problems = image_entry(source, f.name.rsplit(".", 1)[0])
            catalog.problems.extend(problems)
            if entry is not None and entry.id not in catalog.entries:
                catalog.entries[entry.id] = entry
                catalog.files[entry.id] = str(f)
                catalog.sources[entry.id] = source
    catalog.problems.extend(catalog_problems(catalog))
    return catalog


def catalog_for(lab_file: str | Path | None = None,
                explicit: Sequence[str | Path] | None = None) -> ImageCatalog:
    """The catalog a lab file sees (explicit dirs, beside the lab, its parent, the shipped one)."""
    return load_catalog(image_search_dirs(lab_file, explicit))


def _templates(dirs: Sequence[Path]) -> dict[str, Path]:
    """Every template file under ``dirs`` by its loader name (``unattend/default.xml.j2``); first dir wins."""
    found: dict[str, Path] = {}
    for d in dirs:
        for f in sorted(d.rglob("*")):
            if f.is_file():
                found.setdefault(f.relative_to(d).as_posix(), f)
    return found


@dataclass(frozen=True)
class LabInputs:
    """What the loader read for one lab file: all that validation and resolution may look at."""

    source: YamlSource
    lab_path: Path
    catalog: ImageCatalog
    template_dirs: list[Path]
    templates: dict[str, Path] = field(default_factory=dict)  # loader name -> the file that wins
    local_files: dict[str, bool] = field(default_factory=dict)  # a local path the lab names -> it is a file


def _local_files(data: Any, lab_path: Path) -> dict[str, bool]:
    """Whether each local file the lab names exists (today: docker.path, relative to the lab file)."""
    docker = data.get("docker") if isinstance(data, dict) else None
    named = docker.get("path") if isinstance(docker, dict) else None
    if not isinstance(named, str):
        return {}
    local = Path(named).expanduser()
    if not local.is_absolute():
        local = lab_path.resolve().parent / local
    return {str(local): local.is_file()}


def gather(path: str | Path | None, *, images_dirs: Sequence[str | Path] | None = None,
           template_dirs: Sequence[str | Path] | None = None, text: str | None = None,
           file: str = "<lab>") -> LabInputs:
    """Read the lab at ``path`` and what it needs; or parse ``text`` (named ``file``), searching images and
    templates from ``path`` when given (else only the explicit and shipped ones)."""
    if text is None:
        assert path is not None
        source = read_yaml(path)
    else:
        source = parse_yaml(text, file)
    lab_path = Path(path) if path is not None else Path(file)
    tdirs = template_search_dirs(path, template_dirs)
    return LabInputs(source, lab_path, catalog_for(path, images_dirs), tdirs, _templates(tdirs),
                     _local_files(source.data, lab_path))


# --- the path-taking entry points: read, then validate and resolve (pure) -------------------------------


def validate(path: str | Path, *, images_dirs: Sequence[str | Path] | None = None,
             template_dirs: Sequence[str | Path] | None = None) -> list[Problem]:
    """Every problem of the lab file at ``path`` (empty list when valid). Never raises for a bad file."""
    problems, _, _ = analyze(gather(path, images_dirs=images_dirs, template_dirs=template_dirs))
    return problems


def validate_text(text: str, file: str = "<lab>", *, lab_file: str | Path | None = None,
                  images_dirs: Sequence[str | Path] | None = None,
                  template_dirs: Sequence[str | Path] | None = None) -> list[Problem]:
    """Like ``validate`` for text in memory; ``lab_file`` (if any) anchors the image/template search."""
    inputs = gather(lab_file, images_dirs=images_dirs, template_dirs=template_dirs, text=text, file=file)
    problems, _, _ = analyze(inputs)
    return problems


def load_lab(path: str | Path, *, images_dirs: Sequence[str | Path] | None = None,
             template_dirs: Sequence[str | Path] | None = None) -> Lab:
    """Load and validate a lab file; raise LabFileError listing every problem."""
    problems, lab, _ = analyze(gather(path, images_dirs=images_dirs, template_dirs=template_dirs))
    if problems or lab is None:
        raise LabFileError(problems, hint="fix the lines listed, then run `labctl validate` again")
    return lab


def resolve_lab(path: str | Path, *, images_dirs: Sequence[str | Path] | None = None,
                template_dirs: Sequence[str | Path] | None = None) -> ResolvedLab:
    """Read, validate and resolve the lab file at ``path`` in one call."""
    problems, _, resolved = analyze(gather(path, images_dirs=images_dirs, template_dirs=template_dirs))
    if problems or resolved is None:
        raise LabFileError(problems, hint="fix the lines listed, then run `labctl validate` again")
    return resolved
