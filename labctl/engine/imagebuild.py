"""Base images on a host: build one from a Windows Server ISO, once per host, and read what is there.

From ISO, in stages (``BUILD_STAGES``), every host call from labctl.hyperv.ops with its values as parameters:
mount the ISO, read install.wim/esd (Get-WindowsImage), create a dynamic VHDX under a temporary name, partition it
GPT (EFI system, MSR, Windows), format, apply the image (Expand-WindowsImage), make it bootable (the bcdboot host
step), enable features and apply updates offline, then dismount everything, write the sidecar
``<base_disk>.labctl.json`` (ownership + how it was built), move the disk to ``base_disk`` and mark it read-only.
The VHDX and the ISO are dismounted in every case, and a half-made disk is removed.

One build per host, shared by every lab: the builder first creates ``<base_disk>.labctl.lock`` with New-Item
without -Force, which fails when the file exists, so one labctl builds and every other waits until ``base_disk``
appears (the finished disk appears in one Move-Item). A lock whose holder is a process of this machine that is no
longer running is stale: it is cleaned up (the half-made disk, an ISO that run mounted) and taken over. A lock
held from another machine is never broken automatically: the waiter gives up after its timeout and says which
file to remove if that run is gone (docs/images.md).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path, PureWindowsPath
from typing import Any

from labctl.engine.progress import NoProgress, Progress
from labctl.errors import ImageError, Interrupted, LabctlError, RemoteCommandError, TransientError
from labctl.guest.steps import load_host_step
from labctl.hyperv import ops
from labctl.hyperv.facts import Ownership
from labctl.lab.model import ImageEntry, ImageRecipe
from labctl.transport.base import RemoteObject, Result, Transport

log = logging.getLogger(__name__)

BUILD_STAGES = ("mount iso", "read editions", "create disk", "partition", "format", "apply", "boot files",
                "features", "updates", "finish")
SIDECAR_SUFFIX = ".labctl.json"
LOCK_SUFFIX = ".labctl.lock"
BUILD_SUFFIX = ".labctl-build.vhdx"
HOST_ISO_DIR = "C:\\ISO\\labctl"
# How long a second labctl waits for another's build of the same image: a build from ISO with updates applied
# offline can take most of an hour on a real host; a golden image longer.
DEFAULT_WAIT_SECONDS = 3 * 3600.0
UPDATE_EXTENSIONS = (".msu", ".cab")
VHD_EXTENSIONS = (".vhd", ".vhdx", ".avhdx", ".avhd")


def sidecar_path(base_disk: str) -> str:
    """``C:\\LabBases\\WS2022-Core.vhdx`` -> ``C:\\LabBases\\WS2022-Core.vhdx.labctl.json``."""
    return base_disk + SIDECAR_SUFFIX


def lock_path(base_disk: str) -> str:
    return base_disk + LOCK_SUFFIX


def build_path(base_disk: str) -> str:
    """The temporary name a disk is built under (in base_disk's folder, so the final move is a rename)."""
    p = PureWindowsPath(base_disk)
    return str(p.with_name(p.stem + BUILD_SUFFIX))


def image_row(image_id: str) -> str:
    """The progress row of an image build."""
    return f"image {image_id}"


@dataclass(frozen=True)
class BuiltImage:
    """The outcome of ``ImageBuilder.ensure``: the image on the host and who made it."""

    image: str
    path: str
    action: str  # "built" (by this run), "present" (was there), "waited" (another run built it)
    edition: str = ""
    index: int | None = None
    version: str = ""
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"image": self.image, "path": self.path, "action": self.action, "edition": self.edition or None,
                "index": self.index, "version": self.version or None, "seconds": round(self.seconds, 3)}


@dataclass(frozen=True)
class LockHolder:
    """What a build lock file says about the run that holds it."""

    token: str
    machine: str
    pid: int
    lab: str
    started: str
    iso_mounted: str = ""  # an ISO that run mounted (a stale lock's cleanup dismounts it)

    def to_text(self) -> str:
        return json.dumps({"token": self.token, "machine": self.machine, "pid": self.pid, "lab": self.lab,
                           "started": self.started, "iso_mounted": self.iso_mounted})

    @staticmethod
    def parse(text: Any) -> LockHolder | None:
        try:
            data = json.loads(str(text))
            return LockHolder(str(data["token"]), str(data["machine"]), int(data["pid"]), str(data.get("lab", "")),
                              str(data.get("started", "")), str(data.get("iso_mounted") or ""))
        except (ValueError, KeyError, TypeError):
            return None

    def describe(self) -> str:
        return f"lab {self.lab or '?'} (pid {self.pid} on {self.machine}, since {self.started or '?'})"


def pid_alive(pid: int) -> bool:
    """Whether a process of this machine with that id is running (an unknown answer counts as running)."""
    if pid <= 0:
        return False
    if sys.platform == "win32":
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return bool(kernel32.GetLastError() == 5)  # access denied: it exists
        try:
            code = ctypes.c_ulong()
            kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
            return code.value == 259  # STILL_ACTIVE
        finally:
            kernel32.CloseHandle(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # EPERM: someone else's process, alive
    return True


def is_stale(holder: LockHolder | None, *, machine: str | None = None,
             alive: Callable[[int], bool] = pid_alive) -> bool:
    """The stale-lock rule: a lock is stale only when its holder is a process of this machine that has ended.
    An unreadable lock, or one held from another machine, is never judged stale."""
    if holder is None:
        return False
    here = machine or socket.gethostname()
    return holder.machine.lower() == here.lower() and not alive(holder.pid)


def _letter(value: Any) -> str:
    """A DriveLetter as PowerShell sends it (a char: a one-letter string, or its code), or '' when none."""
    if isinstance(value, int) and value > 0:
        value = chr(value)
    text = str(value or "").strip("\x00 ")
    return text[:1].upper() if text[:1].isalpha() else ""


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for piece in iter(lambda: fh.read(1024 * 1024), b""):
            h.update(piece)
    return h.hexdigest()


@dataclass
class _Mounts:
    """What a build has attached on the host, for the cleanup in ``finally``."""

    iso: str = ""
    iso_ours: bool = False
    vhd: str = ""
    vhd_attached: bool = False
    created: bool = False


@dataclass
class _Source:
    iso: str
    sha256: str | None
    image_file: str = ""
    index: int = 0
    name: str = ""
    version: str = ""
    edition_id: str = ""


class ImageBuilder:
    """Builds (or waits for) base images on one host through one transport. ``lab`` names who builds."""

    def __init__(self, transport: Transport, *, lab: str, progress: Progress | None = None, host: str = "",
                 wait_seconds: float = DEFAULT_WAIT_SECONDS, poll: tuple[float, float] = (0.2, 5.0),
                 row: Callable[[str], str] = image_row) -> None:
        self.t = transport
        self.lab = lab
        self.progress = progress or NoProgress()
        self.host = host
        self.wait_seconds = wait_seconds
        self.poll = poll
        self.row = row
        self.machine = socket.gethostname()
        self._holder: LockHolder | None = None  # the lock this builder holds

    # -- once per host ------------------------------------------------------------------------------------
    def ensure(self, image: ImageEntry, make: Callable[[], object] | None = None) -> BuiltImage:
        """``image``'s base disk on the host: there already, built now under the host lock (``make``, default
        from its ISO recipe), or built by another labctl meanwhile (waited for)."""
        start = time.monotonic()
        target = image.base_disk
        row = self.row(image.id)
        if self._exists(target):
            self.progress.stage(row, "finish", "skip", f"{target} is on the host")
            return BuiltImage(image.id, target, "present")
        if image.build is None:
            raise ImageError(f"image {image.id}: {target} is missing on the host and images/{image.id}.yaml has no "
                             "build: recipe", image=image.id, stage="lock", host=self.host,
                             hint="copy a sysprepped image there, or add a build: recipe (docs/images.md)")
        folder = str(PureWindowsPath(target).parent)
        self._call(image, "lock", lambda: self.t.invoke(ops.new_directory(folder)))
        deadline = start + self.wait_seconds
        waited = False
        delay = self.poll[0]
        while True:
            holder = self._take_lock(image)
            if holder is None:
                try:
                    if self._exists(target):  # finished by the run whose lock we saw go away
                        return BuiltImage(image.id, target, "waited" if waited else "present",
                                          seconds=time.monotonic() - start)
                    if make is not None:
                        self.progress.stage(row, "build", "start", f"building {target}")
                        make()
                        self.progress.stage(row, "build", "done", target)
                        return BuiltImage(image.id, target, "built", seconds=time.monotonic() - start)
                    return self.build_from_iso(image, start)
                finally:
                    self._release(image)
            if not waited:
                self.progress.stage(row, "lock", "start", f"waiting: {holder.describe()} is building {target}")
                waited = True
            if self._exists(target):
                self.progress.stage(row, "lock", "done", f"built by {holder.describe()}")
                return BuiltImage(image.id, target, "waited", seconds=time.monotonic() - start)
            if time.monotonic() > deadline:
                raise ImageError(
                    f"image {image.id}: waited {self.wait_seconds:.0f} s for {holder.describe()} to build {target}",
                    image=image.id, stage="lock", host=self.host,
                    hint=f"if that run is gone (the lock is {lock_path(target)}), remove the lock on the host with "
                         f"Remove-Item -LiteralPath '{lock_path(target)}' and run again")
            if self.t.cancel.wait(delay):
                raise Interrupted("interrupted")
            delay = min(delay * 2, self.poll[1])

    def _exists(self, path: str) -> bool:
        out = self.t.invoke(ops.test_path(path)).output
        return bool(out) and out[0] is True

    def _take_lock(self, image: ImageEntry) -> LockHolder | None:
        """None when this run now holds the lock; else the holder (a stale one is cleaned up and taken over)."""
        path = lock_path(image.base_disk)
        mine = LockHolder(uuid.uuid4().hex, self.machine, os.getpid(), self.lab, _now())
        last: RemoteCommandError | None = None
        for _attempt in range(3):
            try:
                # New-Item reports an existing file as a non-terminating error ("The file '...' already exists.").
                res = self.t.invoke(ops.create_exclusive_file(path, mine.to_text()), retry=False)
                failure = (RemoteCommandError(res.errors[-1].message, command="New-Item", fqid=res.errors[-1].fqid)
                           if res.errors else None)
            except TransientError:
                failure = None  # the answer was lost: whether it ran shows in the file
            except RemoteCommandError as err:
                failure = err
            if failure is None and self._read(path) is None:
                continue
            if failure is not None and not self._lock_exists(path):
                last = failure  # gone meanwhile (its build ended), or New-Item fails for another reason
                continue
            text = self._read(path)
            holder = LockHolder.parse(text)
            if holder is not None and holder.token == mine.token:
                self._holder = mine
                return None
            if holder is None and text is None:
                continue  # removed meanwhile: try again
            if not is_stale(holder, machine=self.machine):
                if holder is None:  # unreadable: wait for it like any other holder
                    return LockHolder("", "an unknown machine", 0, "", "")
                return holder
            assert holder is not None
            self.progress.stage(self.row(image.id), "lock", "start",
                                f"taking over the stale lock of {holder.describe()} (that process has ended)")
            self._clean_stale(image, holder, text)
        if last is not None:
            raise self._host_error(image, "lock", last)
        raise ImageError(f"image {image.id}: could not take the build lock {path}", image=image.id, stage="lock",
                         host=self.host, hint="another labctl keeps taking it; run again")

    def _lock_exists(self, path: str) -> bool:
        return self._exists(path)

    def _read(self, path: str) -> str | None:
        out = self.t.invoke(ops.read_text(path)).output
        return str(out[0]) if out and out[0] is not None else None

    def _clean_stale(self, image: ImageEntry, holder: LockHolder, text: str | None) -> None:
        """What a dead run left: the half-made disk (dismounted, removed), an ISO it mounted, then its lock."""
        tmp = build_path(image.base_disk)
        for vhd in self.t.invoke(ops.get_vhd(tmp)).objects():
            if vhd.get("Attached") is True:
                self.t.invoke(ops.dismount_disk(tmp))
        if self._exists(tmp):
            self.t.invoke(ops.remove_file(tmp))
        if holder.iso_mounted:
            with contextlib.suppress(RemoteCommandError):
                for di in self.t.invoke(ops.disk_image(holder.iso_mounted)).objects():
                    if di.get("Attached") is True:
                        self.t.invoke(ops.dismount_iso(holder.iso_mounted))
        # Remove the lock only while it still is the stale one we judged (another waiter may have taken over).
        if self._read(lock_path(image.base_disk)) == text:
            self.t.invoke(ops.remove_file(lock_path(image.base_disk)))

    def _note_iso(self, image: ImageEntry, iso: str) -> None:
        """Record in our lock that we mounted ``iso`` (a stale lock's cleanup dismounts it)."""
        holder = self._holder
        if holder is None:
            return
        updated = LockHolder(holder.token, holder.machine, holder.pid, holder.lab, holder.started, iso)
        self.t.invoke(ops.write_host_text(lock_path(image.base_disk), updated.to_text()))
        self._holder = updated

    def _release(self, image: ImageEntry) -> None:
        path = lock_path(image.base_disk)
        try:
            holder = LockHolder.parse(self._read(path))
            mine = self._holder
            if holder is not None and mine is not None and holder.token == mine.token:
                self.t.invoke(ops.remove_file(path))
        except LabctlError as err:  # the next run finds the lock stale (same machine) or says what to remove
            log.warning("image %s: could not remove the build lock %s: %s", image.id, path, err.message)
        finally:
            self._holder = None

    # -- from ISO -----------------------------------------------------------------------------------------
    def build_from_iso(self, image: ImageEntry, start: float | None = None) -> BuiltImage:
        """Build ``image`` from its ISO recipe (the caller holds the host lock)."""
        recipe = image.build
        assert recipe is not None and not recipe.golden
        start = time.monotonic() if start is None else start
        m = _Mounts()
        done = False
        try:
            source = self._mount_iso(image, recipe, m)
            self._read_editions(image, recipe, source)
            disk = self._create_disk(image, recipe, m)
            system, windows = self._partition(image, disk)
            s_letter, w_letter = self._format(image, disk, system, windows)
            self._apply(image, source, w_letter)
            self._boot_files(image, w_letter, s_letter)
            self._features(image, recipe, w_letter)
            self._updates(image, recipe, w_letter)
            self._finish(image, recipe, source, m)
            done = True
        finally:
            self._cleanup(image, m, removed=not done)
        return BuiltImage(image.id, image.base_disk, "built", source.name, source.index, source.version,
                          time.monotonic() - start)

    def _stage(self, image: ImageEntry, stage: str, status: str, detail: str = "") -> None:
        self.progress.stage(self.row(image.id), stage, status, detail)

    def _call(self, image: ImageEntry, stage: str, fn: Callable[[], Any], hint: str | None = None) -> Any:
        """Run one host call of ``stage``; a host error (terminating, or one a cmdlet wrote without stopping)
        becomes an ImageError naming the image and the stage, with the host's words."""
        try:
            res = fn()
        except RemoteCommandError as err:
            raise self._host_error(image, stage, err, hint) from err
        if isinstance(res, Result) and res.errors:
            first = res.errors[-1]
            raise self._host_error(image, stage, RemoteCommandError(
                first.message, command=_command_of(fn), fqid=first.fqid, category=first.category,
                target=first.target), hint)
        return res

    def _host_error(self, image: ImageEntry, stage: str, err: RemoteCommandError,
                    hint: str | None = None) -> ImageError:
        return ImageError(f"image {image.id}: {stage}: {err.command} failed: {err.message}", image=image.id,
                          stage=stage, host=self.host, fqid=err.fqid,
                          hint=hint or err.hint or _STAGE_HINTS.get(stage))

    def _mount_iso(self, image: ImageEntry, recipe: ImageRecipe, m: _Mounts) -> _Source:
        stage = "mount iso"
        self._stage(image, stage, "start")
        sha = recipe.sha256.lower() if recipe.sha256 else None
        note = ""
        if recipe.iso_file is not None:
            iso, note = self._upload_iso(image, Path(recipe.iso_file), sha or "")
        else:
            assert recipe.iso is not None
            iso = recipe.iso
            if sha is not None:
                have = self._host_hash(image, stage, iso)
                if have != sha:
                    raise ImageError(f"image {image.id}: {stage}: {iso} has SHA-256 {have or 'none (no such file)'}, "
                                     f"the recipe says {sha}", image=image.id, stage=stage, host=self.host,
                                     hint="put the ISO the recipe names there, or fix build.sha256")
        attached = [o for o in self._call(image, stage, lambda: self.t.invoke(ops.disk_image(iso))).objects()
                    if o.get("Attached") is True]
        if attached:
            volumes = self._call(image, stage, lambda: self.t.invoke(ops.disk_image_volume(iso))).objects()
        else:
            volumes = self._call(image, stage, partial(self.t.invoke, ops.mount_iso(iso), retry=False)).objects()
            m.iso, m.iso_ours = iso, True
            self._note_iso(image, iso)
        letter = next((_letter(v.get("DriveLetter")) for v in volumes if _letter(v.get("DriveLetter"))), "")
        if not letter:
            raise ImageError(f"image {image.id}: {stage}: {iso} is mounted but has no drive letter", image=image.id,
                             stage=stage, host=self.host,
                             hint="dismount it (Dismount-DiskImage) and check the host's drive letters")
        self._stage(image, stage, "done", f"{iso} on {letter}:" + (" (it was mounted already)" if attached else "")
                    + note)
        return _Source(iso, sha, image_file=letter)

    def _read_editions(self, image: ImageEntry, recipe: ImageRecipe, source: _Source) -> None:
        stage = "read editions"
        self._stage(image, stage, "start")
        letter = source.image_file
        present = self._call(image, stage, lambda: self.t.invoke(ops.install_images_present(letter))).output
        wim, esd = (bool(present[0]) if present else False), (bool(present[1]) if len(present) > 1 else False)
        if not (wim or esd):
            raise ImageError(f"image {image.id}: {stage}: {source.iso} is not a Windows installation medium: it has "
                             f"no sources\\install.wim or sources\\install.esd", image=image.id, stage=stage,
                             host=self.host, hint="point build.iso at a Windows Server ISO (a foreign or corrupt "
                                                  "ISO has no install image)")
        image_file = f"{letter}:\\sources\\install.{'wim' if wim else 'esd'}"
        source.image_file = image_file
        try:
            found = self.t.invoke(ops.windows_image(image_file, index=recipe.index, name=recipe.edition)).objects()
        except RemoteCommandError as err:
            raise self._edition_error(image, recipe, image_file, err.message, err.fqid) from err
        if not found:
            raise self._edition_error(image, recipe, image_file, "Get-WindowsImage returned nothing", "")
        obj = found[0]
        source.index = int(obj.get("ImageIndex") or recipe.index or 0)
        source.name = str(obj.get("ImageName") or recipe.edition or "")
        source.version = str(obj.get("Version") or "")
        source.edition_id = str(obj.get("EditionId") or "")
        parts = source.version.split(".")
        if len(parts) >= 3 and parts[2].isdigit() and int(parts[2]) != image.os_build:
            raise ImageError(f"image {image.id}: {stage}: {source.name} in {source.iso} is Windows "
                             f"{source.version} (build {parts[2]}), images/{image.id}.yaml says os_build "
                             f"{image.os_build}", image=image.id, stage=stage, host=self.host,
                             hint="use the ISO of that build, or fix os_build (and container_tag) of the image")
        kind = "install.esd (recompressed: applying it takes longer)" if not wim else "install.wim"
        self._stage(image, stage, "done", f"{kind}: {source.index}: {source.name} {source.version}".strip())

    def _edition_error(self, image: ImageEntry, recipe: ImageRecipe, image_file: str, words: str,
                       fqid: str) -> ImageError:
        """A wrong edition or index: the host's words, and the images that file really holds."""
        wanted = f"index {recipe.index}" if recipe.index is not None else f"edition {recipe.edition!r}"
        try:
            listing = self.t.invoke(ops.windows_images(image_file)).objects()
        except RemoteCommandError as err:
            return ImageError(f"image {image.id}: read editions: Get-WindowsImage -ImagePath {image_file} failed: "
                              f"{err.message}", image=image.id, stage="read editions", host=self.host, fqid=err.fqid,
                              hint="the ISO may be corrupt or a partial download: check its SHA-256")
        names = [f"{o.get('ImageIndex')}: {o.get('ImageName')}" for o in listing]
        return ImageError(f"image {image.id}: read editions: {image_file} has no {wanted} ({words}); it holds: "
                          + "; ".join(names), image=image.id, stage="read editions", host=self.host, fqid=fqid,
                          hint="set build.edition to one of these names (or build.index to its number)")

    def _create_disk(self, image: ImageEntry, recipe: ImageRecipe, m: _Mounts) -> int:
        stage = "create disk"
        tmp = build_path(image.base_disk)
        self._stage(image, stage, "start", f"{tmp} ({recipe.disk_size // 1024**3} GiB, dynamic)")
        if self._exists(tmp):  # a leftover of a run that could not clean up (we hold the lock: it is not in use)
            for vhd in self.t.invoke(ops.get_vhd(tmp)).objects():
                if vhd.get("Attached") is True:
                    self._call(image, stage, lambda: self.t.invoke(ops.dismount_disk(tmp)))
            self._call(image, stage, lambda: self.t.invoke(ops.remove_file(tmp)))
        self._call(image, stage, lambda: self.t.invoke(ops.new_dynamic_vhd(tmp, recipe.disk_size), retry=False))
        m.vhd, m.created = tmp, True
        disks = self._call(image, stage, lambda: self.t.invoke(ops.mount_vhd_disk(tmp), retry=False)).objects()
        m.vhd_attached = True
        number = next((d.get("Number") for d in disks if d.get("Number") is not None), None)
        if number is None:
            raise ImageError(f"image {image.id}: {stage}: {tmp} was mounted but Get-Disk returned no disk number",
                             image=image.id, stage=stage, host=self.host)
        self._stage(image, stage, "done", f"{tmp} mounted as disk {number}")
        return int(number)

    def _partition(self, image: ImageEntry, disk: int) -> tuple[int, int]:
        stage = "partition"
        self._stage(image, stage, "start", f"disk {disk}: GPT, EFI system 100 MB, MSR 16 MB, Windows")
        self._call(image, stage, lambda: self.t.invoke(ops.initialize_gpt(disk), retry=False))
        numbers: list[int] = []
        # The EFI system partition starts as basic data: "format" formats it, then gives it the ESP type.
        for gpt, size in ((ops.GPT_BASIC_DATA, ops.EFI_PARTITION_SIZE), (ops.GPT_MSR, ops.MSR_PARTITION_SIZE),
                          (ops.GPT_BASIC_DATA, None)):
            made = self._call(image, stage, partial(self.t.invoke, ops.new_partition(disk, gpt, size),
                                                    retry=False)).objects()
            if not made or made[0].get("PartitionNumber") is None:
                raise ImageError(f"image {image.id}: {stage}: New-Partition returned no partition", image=image.id,
                                 stage=stage, host=self.host)
            numbers.append(int(made[0].get("PartitionNumber")))
        self._stage(image, stage, "done", f"partitions {', '.join(str(n) for n in numbers)}")
        return numbers[0], numbers[2]

    def _format(self, image: ImageEntry, disk: int, system: int, windows: int) -> tuple[str, str]:
        stage = "format"
        self._stage(image, stage, "start", "EFI system FAT32 (then its ESP type), Windows NTFS")
        letters = []
        for part in (system, windows):
            res = self._call(image, stage, partial(self.t.invoke, ops.assign_drive_letter(disk, part)))
            letter = next((_letter(o.get("DriveLetter")) for o in res.objects() if _letter(o.get("DriveLetter"))), "")
            if not letter:
                raise ImageError(f"image {image.id}: {stage}: partition {part} of disk {disk} got no drive letter",
                                 image=image.id, stage=stage, host=self.host,
                                 hint="the host may have run out of drive letters")
            letters.append(letter)
        for letter, fs, label in ((letters[0], "FAT32", "System"), (letters[1], "NTFS", "Windows")):
            self._call(image, stage, partial(self.t.invoke, ops.format_volume(letter, fs, label)))
        self._call(image, stage, lambda: self.t.invoke(ops.set_partition_type(disk, system, ops.GPT_EFI_SYSTEM)))
        self._stage(image, stage, "done", f"EFI system on {letters[0]}:, Windows on {letters[1]}:")
        return letters[0], letters[1]

    def _apply(self, image: ImageEntry, source: _Source, w: str) -> None:
        stage = "apply"
        self._stage(image, stage, "start", f"{source.image_file} index {source.index} to {w}:\\ (Expand-WindowsImage)")
        self._call(image, stage, lambda: self.t.invoke(ops.expand_windows_image(source.image_file, source.index,
                                                                                  f"{w}:\\"), retry=False))
        self._stage(image, stage, "done", f"{source.name} applied")

    def _boot_files(self, image: ImageEntry, w: str, s: str) -> None:
        stage = "boot files"
        self._stage(image, stage, "start", f"bcdboot {w}:\\Windows /s {s}: /f UEFI")
        script = load_host_step("bcdboot").script
        res = self._call(image, stage, lambda: self.t.invoke(ops.host_invoke(script, [f"{w}:\\Windows", f"{s}:"]),
                                                              retry=False))
        obj = next(iter(res.objects()), None)
        if obj is None:
            raise ImageError(f"image {image.id}: {stage}: the bcdboot step returned no result", image=image.id,
                             stage=stage, host=self.host)
        facts = obj.get("Facts")
        code = obj.get("ExitCode", facts.get("ExitCode") if isinstance(facts, RemoteObject) else None)
        lines = [str(x) for x in _as_list(obj.get("Output", facts.get("Output") if isinstance(facts, RemoteObject)
                                                   else None)) if x is not None]
        if code is None or int(code) != 0:
            raise ImageError(f"image {image.id}: {stage}: bcdboot exited with {code}: " + " / ".join(lines),
                             image=image.id, stage=stage, host=self.host, hint=_STAGE_HINTS[stage])
        self._stage(image, stage, "done", " / ".join(lines) or "boot files created")

    def _features(self, image: ImageEntry, recipe: ImageRecipe, w: str) -> None:
        stage = "features"
        if not recipe.features:
            self._stage(image, stage, "skip", "none in the recipe")
            return
        for name in recipe.features:
            self._stage(image, stage, "start", f"enabling {name} offline")
            self._call(image, stage, partial(self.t.invoke, ops.enable_offline_feature(f"{w}:\\", name)))
        self._stage(image, stage, "done", ", ".join(recipe.features))

    def _updates(self, image: ImageEntry, recipe: ImageRecipe, w: str) -> None:
        stage = "updates"
        folder = recipe.updates
        if folder is None:
            self._stage(image, stage, "skip", "none in the recipe")
            return
        if not self._exists(folder):
            raise ImageError(f"image {image.id}: {stage}: the updates folder {folder} is not on the host",
                             image=image.id, stage=stage, host=self.host,
                             hint="create it with the .msu/.cab files, or remove build.updates")
        files = self._call(image, stage, lambda: self.t.invoke(ops.list_files(folder))).objects()
        packages = update_packages(str(f.get("FullName") or "") for f in files)
        if not packages:
            self._stage(image, stage, "skip", f"no .msu or .cab in {folder}")
            return
        for package in packages:
            self._stage(image, stage, "start", f"applying {PureWindowsPath(package).name}")
            self._call(image, stage, partial(self.t.invoke, ops.add_offline_package(f"{w}:\\", package)))
        self._stage(image, stage, "done", f"{len(packages)} package(s) from {folder}")

    def _finish(self, image: ImageEntry, recipe: ImageRecipe, source: _Source, m: _Mounts) -> None:
        stage = "finish"
        target = image.base_disk
        self._stage(image, stage, "start", f"dismounting, then {target} (read-only) with its sidecar")
        self._call(image, stage, lambda: self.t.invoke(ops.dismount_disk(m.vhd)))
        m.vhd_attached = False
        if m.iso_ours:
            self._call(image, stage, lambda: self.t.invoke(ops.dismount_iso(m.iso)))
            m.iso_ours = False
        record = sidecar(image, recipe, {"iso": source.iso, "sha256": source.sha256, "edition": source.name,
                                         "index": source.index, "version": source.version,
                                         "edition_id": source.edition_id}, lab=self.lab)
        # The sidecar first, the disk last: once base_disk appears (one rename) it is complete and labelled.
        self._call(image, stage, lambda: self.t.invoke(ops.write_host_text(sidecar_path(target), record)))
        self._call(image, stage, lambda: self.t.invoke(ops.move_host_file(m.vhd, target), retry=False))
        m.created = False
        self._call(image, stage, lambda: self.t.invoke(ops.mark_read_only(target)))
        self._stage(image, stage, "done", f"{target} ({source.name} {source.version})".strip())

    def _cleanup(self, image: ImageEntry, m: _Mounts, *, removed: bool) -> None:
        """Dismount what the build attached and remove a half-made disk, whatever happened; errors are logged
        (the stale-lock cleanup of the next run finishes what is left)."""
        steps: list[tuple[str, Callable[[], Any]]] = []
        if m.vhd_attached:
            steps.append(("Dismount-VHD", lambda: self.t.invoke(ops.dismount_disk(m.vhd))))
        if m.iso_ours:
            steps.append(("Dismount-DiskImage", lambda: self.t.invoke(ops.dismount_iso(m.iso))))
        if removed and m.created:
            steps.append(("Remove-Item", lambda: self.t.invoke(ops.remove_file(m.vhd))))
        for name, step in steps:
            try:
                step()
            except LabctlError as err:
                log.warning("image %s: cleanup %s failed: %s", image.id, name, err.message)
        if steps and removed:
            self._stage(image, "finish", "failed", "dismounted; the half-made disk removed")

    # -- a local ISO, uploaded once -----------------------------------------------------------------------
    def _host_hash(self, image: ImageEntry, stage: str, path: str) -> str | None:
        if not self._exists(path):
            return None
        obj = next(iter(self._call(image, stage, lambda: self.t.invoke(ops.file_hash(path))).objects()), None)
        value = obj.get("Hash") if obj is not None else None
        return str(value).lower() if value else None

    def _upload_iso(self, image: ImageEntry, local: Path, sha: str) -> tuple[str, str]:
        """``local`` on the host (C:\\ISO\\labctl\\<name>), uploaded unless the host copy's SHA-256 is ``sha``;
        returns the host path and a note for the progress line (what was done)."""
        stage = "mount iso"
        host_path = f"{HOST_ISO_DIR}\\{local.name}"
        if self._host_hash(image, stage, host_path) == sha:
            self._stage(image, stage, "start", f"{host_path} is on the host already (SHA-256 matches)")
            return host_path, " (on the host already: SHA-256 matches, not uploaded)"
        if not local.is_file():
            raise ImageError(f"image {image.id}: {stage}: the local ISO {local} is not a file", image=image.id,
                             stage=stage, host=self.host, hint="fix build.iso_file (relative to the image file)")
        have = sha256_of(local)
        if have != sha:
            raise ImageError(f"image {image.id}: {stage}: {local} has SHA-256 {have}, the recipe says {sha}",
                             image=image.id, stage=stage, host=self.host,
                             hint="the file is not the ISO the recipe names (or build.sha256 is wrong)")
        size = local.stat().st_size
        self._stage(image, stage, "start", f"uploading {local.name} ({size // 1024**2} MiB) to {host_path}")
        self._call(image, stage, lambda: self.t.invoke(ops.new_directory(HOST_ISO_DIR)))
        with local.open("rb") as fh:
            offset = 0
            while True:
                piece = fh.read(ops.UPLOAD_CHUNK)
                if offset and not piece:
                    break
                # Not retried: a repeated Add-Content would append twice; the hash check below catches a loss.
                self._call(image, stage, partial(
                    self.t.invoke, ops.upload_chunk(host_path, piece, first=offset == 0), retry=False))
                offset += len(piece)
                if not piece:
                    break
        got = self._host_hash(image, stage, host_path)
        if got != sha:
            raise ImageError(f"image {image.id}: {stage}: {host_path} has SHA-256 {got or 'none'} after the upload, "
                             f"expected {sha}", image=image.id, stage=stage, host=self.host,
                             hint="the upload was cut or altered; run again to upload it again")
        return host_path, f" (uploaded {local.name}, {size} bytes, SHA-256 checked on the host)"


_STAGE_HINTS: dict[str, str] = {
    "lock": "check that the folder of base_disk exists and can be written on the host",
    "mount iso": "check build.iso: the file must exist on the host (Test-Path) and be an ISO Windows can mount",
    "read editions": "the ISO may be corrupt or a partial download: compare its SHA-256 with Microsoft's",
    "create disk": "check the free space and permissions of base_disk's folder on the host",
    "partition": "the mounted disk could not be partitioned; nothing else uses it (labctl created it)",
    "format": "the new partitions could not be formatted or given drive letters",
    "apply": "Expand-WindowsImage needs about 10 GiB free for Server Core on the disk's drive; a corrupt ISO "
             "fails here too",
    "boot files": "bcdboot could not write the EFI system partition; without boot files the VM does not start",
    "features": "check the feature names in build.features (Get-WindowsOptionalFeature -Path lists them)",
    "updates": "an update must match the image's build and architecture; remove the one named from the folder",
    "finish": "check that base_disk's folder can be written and base_disk is not in use",
}


def _command_of(fn: Callable[[], Any]) -> str:
    """The cmdlet a ``partial(invoke, pipeline)`` sends (for error messages); "the host" when unknown."""
    args = getattr(fn, "args", ())
    first = args[0] if args else None
    return str(getattr(first, "first_command", "") or getattr(first, "command", "") or "the host")


def update_packages(paths: Iterable[str]) -> list[str]:
    """The .msu/.cab files of an updates folder, in name order (the order they are applied in)."""
    chosen = [p for p in paths if p and PureWindowsPath(p).suffix.lower() in UPDATE_EXTENSIONS]
    return sorted(chosen, key=lambda p: PureWindowsPath(p).name.lower())


def sidecar(image: ImageEntry, recipe: ImageRecipe, source: dict[str, Any], *, lab: str,
            built: str | None = None) -> str:
    """The ``<base_disk>.labctl.json`` text: ownership tag and how the image was built (docs/images.md)."""
    return json.dumps({
        "labctl-owned": True, "image": image.id, "os_build": image.os_build,
        "recipe": recipe.model_dump(mode="json", by_alias=True, exclude_none=True),
        "built": built or _now(), "source": source, "lab": lab,
    }, indent=2) + "\n"


def parse_sidecar(text: Any) -> dict[str, Any] | None:
    """A sidecar's record when it is labctl's (``"labctl-owned": true``), else None."""
    if text is None:
        return None
    try:
        data = json.loads(str(text).lstrip("\ufeff"))
    except ValueError:
        return None
    return data if isinstance(data, dict) and data.get("labctl-owned") is True else None


# --- what is on a host, and what depends on it --------------------------------------------------------------


@dataclass(frozen=True)
class DiskFact:
    """A virtual disk on the host: its parent (differencing) and who uses it."""

    path: str
    parent: str = ""
    vhd_type: str = ""
    size: int = 0
    file_size: int = 0
    attached: bool = False


@dataclass(frozen=True)
class Dependant:
    """A disk whose parent chain reaches an image, and the VM and lab it belongs to (if any)."""

    path: str
    vm: str = ""
    lab: str = ""

    def describe(self) -> str:
        who = f"VM {self.vm}" if self.vm else "no VM"
        return f"{self.path} ({who}{', lab ' + self.lab if self.lab else ''})"


@dataclass
class HostDisks:
    """Every disk labctl can see on a host, with the VM (and its lab) each VM disk belongs to."""

    disks: dict[str, DiskFact] = field(default_factory=dict)  # lower path -> fact
    users: dict[str, tuple[str, str]] = field(default_factory=dict)  # lower path -> (VM, lab)

    def chain(self, path: str) -> list[str]:
        """``path``'s parents, nearest first (ParentPath, then its ParentPath...)."""
        out: list[str] = []
        seen = {path.lower()}
        cur = self.disks.get(path.lower())
        while cur is not None and cur.parent and cur.parent.lower() not in seen:
            out.append(cur.parent)
            seen.add(cur.parent.lower())
            cur = self.disks.get(cur.parent.lower())
        return out

    def dependants(self, image_path: str) -> list[Dependant]:
        """Every known disk whose parent chain reaches ``image_path`` (pure)."""
        key = image_path.lower()
        out = []
        for k, fact in sorted(self.disks.items()):
            if k == key or key not in {p.lower() for p in self.chain(fact.path)}:
                continue
            vm, lab = self.users.get(k, ("", ""))
            out.append(Dependant(fact.path, vm, lab))
        return out


def _disk_fact(obj: RemoteObject) -> DiskFact:
    return DiskFact(str(obj.get("Path") or ""), str(obj.get("ParentPath") or ""), str(obj.get("VhdType") or ""),
                    int(obj.get("Size") or 0), int(obj.get("FileSize") or 0), obj.get("Attached") is True)


def read_host_disks(t: Transport, roots: Sequence[str], known: Sequence[str] = ()) -> HostDisks:
    """Every VM's disks (with its ownership tag's lab), every virtual disk file under ``roots`` (the host's
    virtual hard disk folder, the images' folders), ``known`` paths, and all their parents, read back."""
    res = t.invoke(ops.vm_hard_disks())
    labs: dict[str, str] = {}
    drives: list[tuple[str, str]] = []
    for obj in res.objects():
        if obj.is_a("Microsoft.HyperV.PowerShell.HardDiskDrive") or obj.get("ControllerType") is not None:
            if obj.get("Path"):
                drives.append((str(obj.get("VMName")), str(obj.get("Path"))))
        elif obj.get("Name") is not None:
            owner = Ownership.parse(obj.get("Notes"))
            labs[str(obj.get("Name")).lower()] = owner.lab if owner else ""
    found = HostDisks()
    paths: list[str] = [p for _vm, p in drives]
    for vm, path in drives:
        found.users[path.lower()] = (vm, labs.get(vm.lower(), ""))
    if roots:
        listing = t.invoke(ops.lab_folder_files(list(dict.fromkeys(roots))))
        paths += [str(f.get("FullName")) for f in listing.objects()
                  if str(f.get("FullName") or "").lower().endswith(VHD_EXTENSIONS)]
    paths += list(known)
    todo = list(dict.fromkeys(p for p in paths if p))
    while todo:
        batch = [p for p in todo if p.lower() not in found.disks]
        todo = []
        if not batch:
            break
        for obj in t.invoke(ops.get_vhds(batch)).objects():
            fact = _disk_fact(obj)
            if not fact.path:
                continue
            found.disks[fact.path.lower()] = fact
            if fact.parent and fact.parent.lower() not in found.disks:
                todo.append(fact.parent)
        todo = list(dict.fromkeys(todo))  # a path Get-VHD did not answer for (gone, not a disk) is left out
    return found
