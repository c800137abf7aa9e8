"""The base image catalog: images/<id>.yaml files, looked up by id.

Where images are searched (first hit per id wins, so a lab can add or override an image):
  1. directories given explicitly (the CLI's --images-dir), and only those when given;
  2. ``images/`` beside the lab file (a lab kept on its own with its images);
  3. ``images/`` in the lab file's parent directory (a project laid out as labs/ next to images/);
  4. the catalog shipped inside labctl (labctl/resources/images, in a checkout and in a wheel).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from pydantic import ValidationError

from labctl.errors import LabFileError, Problem
from labctl.lab.load import YamlSource, problems_from_validation
from labctl.lab.model import ImageEntry


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


def image_entry(source: YamlSource, stem: str) -> tuple[ImageEntry | None, list[Problem]]:
    """The image an image file declares (``stem``: its file name without extension); problems carry
    file:line like lab files. Pure: labctl.lab.files reads the file."""
    problems = list(source.problems)
    if source.data is None:
        return None, problems
    if not isinstance(source.data, dict):
        return None, [*problems, source.problem((), "an image file is a mapping (id, display_name, build, ...)")]
    try:
        entry = ImageEntry.model_validate(source.data)
    except ValidationError as exc:
        return None, [*problems, *problems_from_validation(exc, source, ImageEntry)]
    if entry.id != stem:
        # The id is how labs name the image; a file named otherwise would be found by nobody reading ls.
        problems.append(source.problem(("id",), f"id {entry.id!r} differs from the file name {stem!r}"))
        return None, problems
    return entry, problems
