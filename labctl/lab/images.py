"""The base image catalog: images/<id>.yaml files, looked up by id.

Where images are searched (first hit per id wins, so a lab can add or override an image):
  1. directories given explicitly (the CLI's --images-dir), and only those when given;
  2. ``images/`` beside the lab file (a lab kept on its own with its images);
  3. ``images/`` in the lab file's parent directory (a project laid out as labs/ next to images/);
  4. the catalog shipped inside labctl (labctl/resources/images, in a checkout and in a wheel).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from labctl.errors import LabFileError, Problem
from labctl.lab.load import problems_from_validation, read_yaml
from labctl.lab.model import ImageEntry
from labctl.resources import resource_dir

BUNDLED_IMAGES_DIR = resource_dir("images")


def search_dirs(kind: str, bundled: Path, lab_file: str | Path | None = None,
                explicit: Sequence[str | Path] | None = None) -> list[Path]:
    """Directories named ``kind`` ("images", "templates") in priority order: explicit ones only if given,
    else beside the lab file, in its parent (labs/ next to images/), then the shipped one. Existing ones only."""
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


@dataclass
class ImageCatalog:
    """Images by id, with the file each came from."""

    entries: dict[str, ImageEntry] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def get(self, image_id: str) -> ImageEntry | None:
        """The image with this id, or None."""
        return self.entries.get(image_id)

    def ids(self) -> list[str]:
        """Known ids, sorted."""
        return sorted(self.entries)

    def __contains__(self, image_id: object) -> bool:
        return image_id in self.entries

    def __iter__(self) -> Iterator[ImageEntry]:
        return iter(self.entries[i] for i in self.ids())

    def check(self) -> None:
        """Raise LabFileError if any image file was invalid."""
        if self.problems:
            raise LabFileError(self.problems, hint="fix the image files listed")


def load_image_file(path: str | Path) -> tuple[ImageEntry | None, list[Problem]]:
    """Load one image file; problems carry file:line like lab files."""
    source = read_yaml(path)
    problems = list(source.problems)
    if source.data is None:
        return None, problems
    if not isinstance(source.data, dict):
        return None, [*problems, source.problem((), "an image file is a mapping (id, display_name, build, ...)")]
    try:
        entry = ImageEntry.model_validate(source.data)
    except ValidationError as exc:
        return None, [*problems, *problems_from_validation(exc, source, ImageEntry)]
    stem = Path(path).name.rsplit(".", 1)[0]
    if entry.id != stem:
        # The id is how labs name the image; a file named otherwise would be found by nobody reading ls.
        problems.append(source.problem(("id",), f"id {entry.id!r} differs from the file name {stem!r}"))
        return None, problems
    return entry, problems


def load_catalog(dirs: Iterable[str | Path]) -> ImageCatalog:
    """Load every *.yaml / *.yml in ``dirs``; the first directory holding an id wins."""
    catalog = ImageCatalog()
    for d in dirs:
        files = sorted([*Path(d).glob("*.yaml"), *Path(d).glob("*.yml")])
        for f in files:
            entry, problems = load_image_file(f)
            catalog.problems.extend(problems)
            if entry is not None and entry.id not in catalog.entries:
                catalog.entries[entry.id] = entry
                catalog.files[entry.id] = str(f)
    return catalog


def catalog_for(lab_file: str | Path | None = None,
                explicit: Sequence[str | Path] | None = None) -> ImageCatalog:
    """The catalog a lab file sees (see the module docstring for the search order)."""
    return load_catalog(image_search_dirs(lab_file, explicit))
