"""The image use cases: build the images a lab needs on its host(s), list what is there, remove one.

``ensure_images`` is what ``up`` calls before any VM (once per host, for every copy on it); ``build_images``,
``list_images`` and ``remove_image`` are ``labctl image build|list|rm``. A golden recipe (``from:``) is built by
labctl.app.golden (its parent first, if missing), under the same host lock as a build from ISO.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath
from typing import Any

from labctl.app.classes import describe, on_each_host, open_hosts
from labctl.app.connection import HostConnection, connect
from labctl.app.secrets import Prompt
from labctl.engine.imagebuild import (
    DEFAULT_WAIT_SECONDS,
    BuiltImage,
    Dependant,
    ImageBuilder,
    build_path,
    lock_path,
    parse_sidecar,
    read_host_disks,
    sidecar_path,
)
from labctl.engine.progress import Progress
from labctl.errors import ImageError, LabUsageError, PlanError
from labctl.hyperv import ops
from labctl.hyperv.facts import host_facts_pipeline, parse_host_facts
from labctl.lab import catalog_for, format_size
from labctl.lab.images import ImageCatalog
from labctl.lab.model import ImageEntry, ResolvedLab
from labctl.transport.base import Pipeline, Transport

# --- which images ------------------------------------------------------------------------------------------


def size_text(n: int) -> str:
    """A size as labctl prints it (8704MiB), for the CLI."""
    return format_size(n)


def lab_catalog(lab: ResolvedLab) -> ImageCatalog:
    """The image catalog the lab file sees (the same search as when it was loaded)."""
    return catalog_for(lab.source)


def with_parents(images: Sequence[ImageEntry], catalog: ImageCatalog) -> list[ImageEntry]:
    """``images`` and the images their golden recipes start from, each once, parents before children."""
    out: dict[str, ImageEntry] = {}
    for image in images:
        for parent in reversed(catalog.parents(image.id)):
            out.setdefault(parent.id, parent)
        out.setdefault(image.id, image)
    return list(out.values())


def used_images(labs: Sequence[ResolvedLab]) -> list[ImageEntry]:
    """The images the labs' VMs use, each once, in the order the VMs name them."""
    out: dict[str, ImageEntry] = {}
    for lab in labs:
        for vm in lab.vms:
            out.setdefault(vm.image.id, vm.image)
    return list(out.values())


def present_on(t: Transport, paths: Sequence[str]) -> dict[str, bool]:
    """Test-Path of every path, in one round trip."""
    unique = list(dict.fromkeys(paths))
    if not unique:
        return {}
    out = t.invoke(Pipeline.of(*[ops.test_path(p) for p in unique])).output
    return {p: bool(v is True) for p, v in zip(unique, out, strict=False)}


# --- building ----------------------------------------------------------------------------------------------


def _golden_builder(conn: HostConnection, image: ImageEntry, parent: ImageEntry, lab: ResolvedLab,
                    state_dir: Path, progress: Progress | None) -> Callable[[], object]:
    def make() -> object:
        # labctl.app.golden builds golden images (a build VM, bootstrap, sysprep); imported when one is built.
        from labctl.app.golden import build_golden_on

        return build_golden_on(conn, image, parent, state_dir=state_dir, progress=progress, docker=lab.docker,
                               built_by=lab.name)

    return make


def ensure_on(conn: HostConnection, images: Sequence[ImageEntry], catalog: ImageCatalog, *, lab: ResolvedLab,
              progress: Progress | None = None, wait_seconds: float = DEFAULT_WAIT_SECONDS,
              only_missing_with_recipe: bool = True, row: Callable[[str], str] | None = None) -> list[BuiltImage]:
    """Build on one host each of ``images`` (and the parents of golden ones) that is missing, in order: parents
    first. An image that is missing and has no recipe is left alone when ``only_missing_with_recipe`` (preflight
    reports it), else it is an ImageError."""
    chain = with_parents(images, catalog)
    present = present_on(conn.transport, [i.base_disk for i in chain])
    kwargs: dict[str, Any] = {"row": row} if row is not None else {}
    builder = ImageBuilder(conn.transport, lab=lab.name, progress=progress, host=conn.description,
                           wait_seconds=wait_seconds, **kwargs)
    state = Path(lab.class_state_dir or lab.state_dir) / "images"
    out: list[BuiltImage] = []
    for image in chain:
        if present.get(image.base_disk):
            continue
        if image.build is None and only_missing_with_recipe:
            continue
        make = None
        if image.build is not None and image.build.from_ is not None:
            parent = catalog.get(image.build.from_)
            if parent is None:  # the catalog check refuses this at load; a catalog changed since then
                raise ImageError(f"image {image.id}: from: {image.build.from_!r} is not in the image catalog",
                                 image=image.id, stage="build", host=conn.description)
            make = _golden_builder(conn, image, parent, lab, state / image.id, progress)
        out.append(builder.ensure(image, make))
    return out


def ensure_images(conn: HostConnection, labs: Sequence[ResolvedLab], *, progress: Progress | None = None,
                  wait_seconds: float = DEFAULT_WAIT_SECONDS) -> list[BuiltImage]:
    """What ``up`` runs once per host before any VM: every image the labs (the copies on this host) use that
    is missing and has a recipe, built or waited for."""
    if not labs:
        return []
    return ensure_on(conn, used_images(labs), lab_catalog(labs[0]), lab=labs[0], progress=progress,
                     wait_seconds=wait_seconds)


@dataclass
class ImageBuildResult:
    """What ``image build`` did on each host."""

    lab: str
    host: str
    simulated: bool
    images: list[tuple[str, BuiltImage]] = field(default_factory=list)  # (host key, outcome)
    sim_clock: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"lab": self.lab, "host": self.host, "simulated": self.simulated,
                "images": [{"host": k, **b.to_json()} for k, b in self.images], "simulated_clock": self.sim_clock}


@contextmanager
def _hosts(lab: ResolvedLab, prompt: Prompt | None) -> Iterator[dict[str, HostConnection]]:
    """Every host of the lab (each host of a class's pool), one connection each."""
    if lab.is_class:
        with open_hosts(lab, lab.host_keys, workers=1, prompt=prompt) as conns:
            yield conns
        return
    conn = connect(lab, workers=1, prompt=prompt)
    try:
        yield {"host": conn}
    finally:
        conn.close()


def _pick(lab: ResolvedLab, names: Sequence[str], catalog: ImageCatalog) -> list[ImageEntry]:
    if not names:
        return used_images([lab])
    out = []
    for name in names:
        image = catalog.get(name)
        if image is None:
            raise LabUsageError(f"no image {name!r} in the catalog of {lab.source}; known: {', '.join(catalog.ids())}",
                                field="image", hint="name an images/<id>.yaml id (labctl image list shows them)")
        out.append(image)
    return out


def build_images(lab: ResolvedLab, names: Sequence[str] = (), *, progress: Progress | None = None,
                 prompt: Prompt | None = None, wait_seconds: float = DEFAULT_WAIT_SECONDS) -> ImageBuildResult:
    """``labctl image build``: the named images (default: the ones the lab's VMs use) that are missing on the
    lab's host(s), built from their recipes; one without a recipe is an ImageError."""
    catalog = lab_catalog(lab)
    catalog.check()
    wanted = _pick(lab, names, catalog)
    with _hosts(lab, prompt) as conns:
        host, simulated = describe(conns)
        multi = len(conns) > 1

        def one(key: str, conn: HostConnection) -> list[BuiltImage]:
            row = (lambda i: f"image {i}@{key}") if multi else None
            return ensure_on(conn, wanted, catalog, lab=lab, progress=progress, wait_seconds=wait_seconds,
                             only_missing_with_recipe=False, row=row)

        per_host = on_each_host(conns, one)
        result = ImageBuildResult(lab.name, host, simulated)
        for key, built in per_host.items():
            present = {b.image for b in built}
            result.images += [(key, b) for b in built]
            result.images += [(key, BuiltImage(i.id, i.base_disk, "present")) for i in wanted if i.id not in present]
        clocks = [c for c in (conn.sim_report() for conn in conns.values()) if c]
        result.sim_clock = clocks[0] if clocks else None
        return result


# --- list and rm ---------------------------------------------------------------------------------------------


@dataclass
class HostImage:
    """One catalog image as a host has it."""

    host: str
    image: str
    path: str
    present: bool
    os_build: int
    edition: str = ""
    size: int = 0  # bytes the file takes
    virtual_size: int = 0
    parents: list[str] = field(default_factory=list)
    dependants: list[Dependant] = field(default_factory=list)
    owned: bool = False  # a labctl sidecar with "labctl-owned": true
    built: str = ""
    built_by: str = ""
    recipe: bool = False
    building: bool = False  # a build lock is there

    @property
    def labs(self) -> list[str]:
        return sorted({d.lab for d in self.dependants if d.lab})

    def to_json(self) -> dict[str, Any]:
        return {"host": self.host, "image": self.image, "path": self.path, "present": self.present,
                "os_build": self.os_build, "edition": self.edition or None, "size_bytes": self.size,
                "virtual_size_bytes": self.virtual_size, "parents": self.parents,
                "dependants": [{"path": d.path, "vm": d.vm or None, "lab": d.lab or None} for d in self.dependants],
                "labs": self.labs, "labctl_owned": self.owned, "built": self.built or None,
                "built_by": self.built_by or None, "has_recipe": self.recipe, "building": self.building}


@dataclass
class ImageListResult:
    lab: str
    host: str
    simulated: bool
    images: list[HostImage] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"lab": self.lab, "host": self.host, "simulated": self.simulated,
                "images": [i.to_json() for i in self.images]}


def _scan_roots(conn: HostConnection, images: Sequence[ImageEntry]) -> list[str]:
    """Where differencing disks are looked for: the host's virtual hard disk folder (labctl's lab folders are
    under it) and every image's own folder."""
    facts = parse_host_facts(conn.transport.invoke(host_facts_pipeline()))
    roots = [facts.vhd_path or r"C:\ProgramData\Microsoft\Windows\Virtual Hard Disks"]
    roots += [str(PureWindowsPath(i.base_disk).parent) for i in images]
    return list(dict.fromkeys(r for r in roots if r))


def host_images(conn: HostConnection, key: str, images: Sequence[ImageEntry]) -> list[HostImage]:
    """Each image as the host has it: file, VHD facts, sidecar, parent chain, and the disks that depend on it."""
    t = conn.transport
    paths = [i.base_disk for i in images]
    present = present_on(t, paths + [lock_path(p) for p in paths])
    disks = read_host_disks(t, _scan_roots(conn, images), [p for p in paths if present.get(p)])
    out = []
    for image in images:
        row = HostImage(key, image.id, image.base_disk, bool(present.get(image.base_disk)), image.os_build,
                        recipe=image.build is not None, building=bool(present.get(lock_path(image.base_disk))))
        if row.present:
            fact = disks.disks.get(image.base_disk.lower())
            if fact is not None:
                row.size, row.virtual_size = fact.file_size, fact.size
            row.parents = disks.chain(image.base_disk)
            row.dependants = disks.dependants(image.base_disk)
            res = t.invoke(ops.read_text(sidecar_path(image.base_disk)))
            record = parse_sidecar(res.output[0] if res.output else None)
            if record is not None:
                row.owned = True
                source = record.get("source") or {}
                row.edition = str(source.get("edition") or (f"from {source.get('from')}" if source.get("from")
                                                           else ""))
                row.built = str(record.get("built") or "")
                row.built_by = str(record.get("lab") or "")
        out.append(row)
    return out


def list_images(lab: ResolvedLab, *, prompt: Prompt | None = None) -> ImageListResult:
    """``labctl image list``: every image of the lab's catalog on its host(s)."""
    catalog = lab_catalog(lab)
    images = list(catalog)
    with _hosts(lab, prompt) as conns:
        host, simulated = describe(conns)
        rows = on_each_host(conns, lambda key, conn: host_images(conn, key, images))
        result = ImageListResult(lab.name, host, simulated)
        for key in conns:
            result.images += rows[key]
        return result


@dataclass
class ImageRmResult:
    lab: str
    host: str
    simulated: bool
    image: str
    removed: list[str] = field(default_factory=list)  # "host: path" of each file removed
    absent: list[str] = field(default_factory=list)  # hosts where the image was not there

    def to_json(self) -> dict[str, Any]:
        return {"lab": self.lab, "host": self.host, "simulated": self.simulated, "image": self.image,
                "removed": self.removed, "absent_on": self.absent}


def rm_refusals(row: HostImage) -> list[str]:
    """Why ``image rm`` must not remove this image on this host (empty: it may)."""
    why = []
    if row.dependants:
        why.append(f"{len(row.dependants)} differencing disk(s) depend on {row.path} (removing it would break them): "
                   + "; ".join(d.describe() for d in row.dependants))
    if not row.owned:
        why.append(f"{row.path} has no labctl sidecar ({sidecar_path(row.path)}): labctl did not build it, so it "
                   "leaves it alone")
    if row.building:
        why.append(f"a build of {row.image} holds the lock {lock_path(row.path)}")
    return why


def remove_image(lab: ResolvedLab, image_id: str, *, prompt: Prompt | None = None,
                 confirm: Callable[[list[HostImage]], bool] | None = None) -> ImageRmResult:
    """``labctl image rm``: remove an image labctl built, on every host of the lab where it is; refused (PlanError,
    nothing removed anywhere) while any differencing disk depends on it or it is not labctl's."""
    catalog = lab_catalog(lab)
    image = catalog.get(image_id)
    if image is None:
        raise LabUsageError(f"no image {image_id!r} in the catalog of {lab.source}; known: {', '.join(catalog.ids())}",
                            field="image")
    with _hosts(lab, prompt) as conns:
        host, simulated = describe(conns)
        rows = on_each_host(conns, lambda key, conn: host_images(conn, key, [image])[0])
        result = ImageRmResult(lab.name, host, simulated, image.id)
        there = [r for r in rows.values() if r.present]
        result.absent = [k for k, r in rows.items() if not r.present]
        refusals = [f"{r.host}: {why}" if len(conns) > 1 else why for r in there for why in rm_refusals(r)]
        if refusals:
            raise PlanError(f"image {image.id} is not removed:\n  - " + "\n  - ".join(refusals), check="image-rm",
                            hint="destroy the labs that use it first (labctl destroy LAB); nothing was removed")
        if not there or (confirm is not None and not confirm(there)):
            return result
        for row in there:
            t = conns[row.host].transport
            for path in (row.path, sidecar_path(row.path)):
                # -Force: the base disk is read-only (labctl marked it so).
                t.invoke(ops.remove_file(path))
            left = present_on(t, [row.path, build_path(row.path)])
            if left.get(row.path):
                raise ImageError(f"image {image.id}: {row.path} is still on {row.host} after Remove-Item",
                                 image=image.id, stage="rm", host=row.host)
            result.removed.append(f"{row.host}: {row.path}")
        return result
