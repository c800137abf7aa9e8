"""The base image catalog: images/<id>.yaml files, looked up by id.

Where images are searched (first hit per id wins, so a lab can add or override an image):
  1. directories given explicitly (the CLI's --images-dir), and only those when given;
  2. ``images/`` beside the lab file (a lab kept on its own with its images);
  3. ``images/`` in the lab file's parent directory (a project laid out as labs/ next to images/);
  4. the catalog shipped inside labctl (labctl/resources/images, in a checkout and in a wheel).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import PurePath
from typing import Any

from pydantic import ValidationError

from labctl.errors import LabFileError, Problem
from labctl.lab.load import LineMap, YamlSource, problems_from_validation
from labctl.lab.model import ImageEntry, ImageRecipe


@dataclass
class ImageCatalog:
    """Images by id, with the file each came from."""

    entries: dict[str, ImageEntry] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    sources: dict[str, YamlSource] = field(default_factory=dict)  # id -> its parsed file (for lines)

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

    def parents(self, image_id: str) -> list[ImageEntry]:
        """The images ``image_id``'s golden recipe builds on, nearest first (``from:``, then its ``from:``...)."""
        out: list[ImageEntry] = []
        seen = {image_id}
        entry = self.entries.get(image_id)
        while entry is not None and entry.build is not None and entry.build.from_ is not None:
            parent = self.entries.get(entry.build.from_)
            if parent is None or parent.id in seen:
                break
            seen.add(parent.id)
            out.append(parent)
            entry = parent
        return out

    def check(self) -> None:
        """Raise LabFileError if any image file was invalid."""
        if self.problems:
            raise LabFileError(self.problems, hint="fix the image files listed")


def _legacy_source(source: YamlSource) -> tuple[YamlSource, bool]:
    """``build: 20348`` (anything but a mapping) as ``os_build: 20348``, with the line map following it."""
    data = source.data
    if not isinstance(data, dict) or "build" not in data or isinstance(data["build"], dict) or "os_build" in data:
        return source, False
    moved: dict[str, Any] = {("os_build" if k == "build" else k): v for k, v in data.items()}
    lines = dict(source.lines.lines)
    for path, line in source.lines.lines.items():
        if path and path[0] == "build":
            lines[("os_build", *path[1:])] = line
    return replace(source, data=moved, lines=LineMap(lines)), True


def recipe_problems(recipe: ImageRecipe, source: YamlSource) -> list[Problem]:
    """The rules of one ``build:`` recipe no single field can say (iso xor iso_file, edition xor index...)."""
    out: list[Problem] = []
    given = recipe.model_fields_set

    def at(name: str, message: str) -> None:
        out.append(source.problem(("build", name) if name else ("build",), message))

    if recipe.golden:
        for name in ("iso", "iso_file", "sha256", "edition", "index", "features", "updates", "disk_size"):
            if name in given:
                where = "bootstrap.features" if name == "features" else "the parent image's recipe"
                at(name, f"a golden image (from: {recipe.from_}) starts from its parent's disk and has no {name}; "
                         f"give it in {where}")
        return out
    if recipe.bootstrap is not None:
        at("bootstrap", "bootstrap: belongs to a golden image; add from: <the image it starts from>")
    if (recipe.iso is None) == (recipe.iso_file is None):
        at("iso" if recipe.iso is not None else "", "give the source ISO once: iso: (a path on the host) or "
                                                    "iso_file: (a local file uploaded to the host)")
    if recipe.iso_file is not None and recipe.sha256 is None:
        at("iso_file", "iso_file: needs sha256: (the ISO's SHA-256, checked before and after the upload)")
    if (recipe.edition is None) == (recipe.index is None):
        at("edition" if recipe.edition is not None else "",
           "name the image in install.wim/esd once: edition: (its name) or index: (its number)")
    return out


def catalog_problems(catalog: ImageCatalog) -> list[Problem]:
    """Rules across image files: a golden recipe's ``from:`` names an image of the catalog, with no cycle."""
    out: list[Problem] = []
    for image_id in catalog.ids():
        entry = catalog.entries[image_id]
        recipe = entry.build
        if recipe is None or recipe.from_ is None:
            continue
        source = catalog.sources.get(image_id)
        file = catalog.files.get(image_id, "")

        def problem(message: str, src: YamlSource | None = source, file: str = file) -> Problem:
            return src.problem(("build", "from"), message) if src is not None else Problem(file, None, "build.from",
                                                                                           message)

        if recipe.from_ not in catalog.entries:
            out.append(problem(f"from: {recipe.from_!r} is not an image of the catalog; known: "
                               f"{', '.join(i for i in catalog.ids() if i != image_id)}"))
            continue
        chain = [image_id]
        cur: ImageEntry | None = entry
        while cur is not None and cur.build is not None and cur.build.from_ is not None:
            nxt = cur.build.from_
            if nxt in chain:
                out.append(problem("from: makes a cycle: " + " -> ".join([*chain, nxt])))
                break
            chain.append(nxt)
            cur = catalog.entries.get(nxt)
    return out


def _local_iso(entry: ImageEntry, source: YamlSource) -> ImageEntry:
    """A relative ``iso_file`` made relative to the image file's folder (the path is not touched otherwise)."""
    recipe = entry.build
    if recipe is None or recipe.iso_file is None or PurePath(recipe.iso_file).is_absolute():
        return entry
    local = str(PurePath(source.file).parent / recipe.iso_file)
    return entry.model_copy(update={"build": recipe.model_copy(update={"iso_file": local})})


def image_entry(source: YamlSource, stem: str) -> tuple[ImageEntry | None, list[Problem]]:
    """The image an image file declares (``stem``: its file name without extension); problems carry
    file:line like lab files. Pure: labctl.lab.files reads the file."""
    problems = list(source.problems)
    if source.data is None:
        return None, problems
    if not isinstance(source.data, dict):
        return None, [*problems, source.problem((), "an image file is a mapping (id, display_name, os_build, ...)")]
    read, legacy = _legacy_source(source)
    try:
        entry = ImageEntry.model_validate(read.data)
    except ValidationError as exc:
        found = problems_from_validation(exc, read, ImageEntry)
        if legacy:  # report at the key the file wrote
            found = [Problem(p.file, p.line, "build" + p.field[len("os_build"):], p.message)
                     if p.field.split(".")[0].split("[")[0] == "os_build" else p for p in found]
        return None, [*problems, *found]
    if entry.id != stem:
        # The id is how labs name the image; a file named otherwise would be found by nobody reading ls.
        problems.append(source.problem(("id",), f"id {entry.id!r} differs from the file name {stem!r}"))
        return None, problems
    if entry.build is not None:
        rules = recipe_problems(entry.build, source)
        if rules:
            return None, [*problems, *rules]
    return _local_iso(entry, source), problems
