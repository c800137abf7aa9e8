"""Golden container-host images: a build VM from the ``from:`` image, made a container host by labctl's own
stages, cleaned, generalized with sysprep, and turned into a standalone, read-only base disk.

The build is a one-VM lab of its own on the host (switch, gateway, NAT, lab folder), tagged
``labctl-owned lab=image-build-<image> lab-id=<id>``: the ``image-build-`` lab name (longer than any lab file
allows, so it can never be a user's lab) marks it as an image build for ``labctl ls``. It goes through the
same Applier as ``up``: readiness, then the container-host bootstrap with the recipe's ``bootstrap:``
(features, Docker, base images, and the isolation checks). Then the guest steps golden-clean and sysprep
(templates/unattend/generalize.xml.j2), the wait for Off, and the disk:

Decision: the golden base_disk is a **standalone** VHDX (Convert-VHD of the build VM's differencing disk),
not a differencing child of the parent. A child would be smaller and quicker to make, but it would tie the
golden image (and every lab disk on it) to the parent's exact bytes: rebuilding or updating ``ws2022-core``
breaks the chain ("the chain of virtual hard disks is broken": Hyper-V checks the parent's identifier), and
every guest read would walk one more level. A standalone disk costs one copy of the merged data, once per
image, and leaves the parent free to be rebuilt or removed; lab disks on it are one level deep as on any
base. Merge-VHD is no option: it writes into the parent, which is read-only and shared.

Whatever happens, the build lab is removed afterwards (VM, lab folder with the build disk, NAT, switch); a
failed build leaves nothing on the host but what its error lists as not removed.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from labctl.app.connection import HostConnection
from labctl.app.session import GUEST_ADMIN
from labctl.docker import release
from labctl.engine.apply import Applier, ApplyOptions, ApplyReport
from labctl.engine.bootstrap import BootstrapContext
from labctl.engine.context import StageContext
from labctl.engine.destroy import DestroyReport, destroy
from labctl.engine.journal import Journal
from labctl.engine.plan import DesiredLab, DesiredVm, DockerWish, plan
from labctl.engine.progress import NoProgress, Progress
from labctl.engine.stages import Timeouts
from labctl.errors import LabctlError, RemoteCommandError, StageError, TransientError, TransportError
from labctl.hyperv import ops
from labctl.hyperv.facts import HostFacts, Ownership, host_facts_pipeline, parse_host_facts
from labctl.lab.files import template_search_dirs
from labctl.lab.model import (
    DEFAULT_CONTAINER_CIDR,
    DEFAULT_CONTAINER_NAT,
    DEFAULT_DNS,
    DEFAULT_DOCKER_VERSION,
    DOCKER_URL_TEMPLATE,
    ImageEntry,
    ResolvedDocker,
    ResolvedLab,
    ResolvedNetwork,
    ResolvedSimHost,
    ResolvedVm,
    SecretSource,
    container_image_ref,
)
from labctl.render import render_unattend
from labctl.render.env import environment_for
from labctl.secret import Secret
from labctl.transport.base import Credential, RemoteObject

BUILD_LAB_PREFIX = "image-build-"
GENERALIZE_TEMPLATE = "unattend/generalize.xml.j2"
SUPPORTED_FEATURES = ("Containers", "Hyper-V")
BUILD_MEMORY = 4 * 1024**3  # nested Hyper-V in the build VM needs 4 GiB (labctl.lab.model.NESTED_MIN_MEMORY)
BUILD_PROCESSORS = 2
# Where the build lab's subnet comes from: /24s of 10.255.0.0/16, the first that no NAT or host address uses.
BUILD_SUBNETS = ipaddress.IPv4Network("10.255.0.0/16")
# Generalize + shutdown take minutes on real hardware (the simulator models its own figure).
STEP_TIMEOUTS = {"sysprep": 1800.0, "golden-clean": 600.0}
SETUPERR_LINES = 8  # of sysprep's setuperr.log lines, how many an error quotes


@dataclass
class GoldenResult:
    """A golden image built on a host: where it is, how it was made, and what the build removed afterwards."""

    image: str
    base_disk: str
    sidecar: str
    parent: str  # the from: image's base_disk (only read)
    record: dict[str, Any]  # the sidecar's content
    cleaned: dict[str, list[str]] = field(default_factory=dict)  # golden-clean's Removed / Kept
    removed: list[str] = field(default_factory=list)  # the build lab's things removed from the host
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Build:
    """The one-VM build lab for one golden image."""

    image: ImageEntry
    parent: ImageEntry
    lab: DesiredLab
    vm: DesiredVm
    features: tuple[str, ...]
    docker: bool

    @property
    def label(self) -> str:
        return f"image {self.image.id}"


def build_lab_name(image_id: str) -> str:
    """The build lab's name (and the lab= of its ownership tag): ``image-build-<id>``."""
    return BUILD_LAB_PREFIX + image_id


def is_image_build(owner: Ownership | None) -> bool:
    """Whether an ownership tag marks a golden image's build lab."""
    return owner is not None and owner.lab.startswith(BUILD_LAB_PREFIX)


def build_golden_on(conn: HostConnection, image: ImageEntry, parent: ImageEntry, *, state_dir: Path,
                    progress: Progress | None, docker: ResolvedDocker | None = None,
                    built_by: str | None = None) -> GoldenResult:
    """Build golden ``image`` (a recipe with ``from:``) on the host from ``parent``, which must be there.

    ``state_dir``: where the build's journal lives while it runs (removed afterwards); ``docker``: which Docker
    zip to bake in (default: labctl's default version from download.docker.com, or the simulator's mirror);
    ``built_by``: recorded in the sidecar as "lab" (default: the build lab's name). Raises StageError naming
    the image and the step, with the guest's own words."""
    shown = progress or NoProgress()
    label = f"image {image.id}"
    recipe: Any = image.build
    if recipe is None or getattr(recipe, "from_", None) is None:
        raise StageError(f"{label}: its recipe has no from: (not a golden image)", vm=label, stage="recipe")
    if recipe.from_ != parent.id:
        raise StageError(f"{label}: its recipe is from {recipe.from_}, not {parent.id}", vm=label, stage="recipe")
    wish = _docker_wish(docker)
    journal_file = Path(state_dir) / build_lab_name(image.id) / "journal.json"
    _step(shown, label, "check", "start", f"{parent.id} at {parent.base_disk}")
    if not _exists(conn, parent.base_disk):
        raise StageError(f"{label}: its parent {parent.id} ({parent.base_disk}) is not on the host",
                         vm=label, stage="check", hint=f"build {parent.id} first (labctl image build)")
    if _exists(conn, image.base_disk):
        raise StageError(f"{label}: {image.base_disk} exists already", vm=label, stage="check",
                         hint=f"remove it first (labctl image rm ... {image.id}) to build it again")
    facts = _facts(conn)
    leftovers = _clean_leftovers(conn, journal_file, build_lab_name(image.id), facts, shown, label)
    journal = Journal.open(journal_file, build_lab_name(image.id))
    owner = Ownership(build_lab_name(image.id), journal.lab_id)
    build = _plan_build(image, parent, facts, wish)
    password = Secret(_password())
    result: GoldenResult | None = None
    failure: BaseException | None = None
    try:
        result = _build(conn, build, journal, owner, facts, password, shown, wish, built_by)
    except BaseException as err:
        failure = err
        raise
    finally:
        report = _remove_build_lab(conn, build.lab, journal, owner, shown, label)
        if failure is None and result is not None:
            result.removed = [*leftovers, *report.removed]
            if report.remaining:
                result.notes.append("the build lab was not removed completely: " + "; ".join(report.remaining))
        elif report.remaining and isinstance(failure, LabctlError):
            failure.message += "\n  left on the host: " + "; ".join(report.remaining)
            failure.args = (failure.message,)
    assert result is not None
    _step(shown, label, "done", "done", result.base_disk)
    return result


# -- the build -------------------------------------------------------------------------------------------------


def _build(conn: HostConnection, build: _Build, journal: Journal, owner: Ownership, facts: HostFacts,
           password: Secret, progress: Progress, wish: DockerWish, built_by: str | None) -> GoldenResult:
    t = conn.transport
    label = build.label
    present = {build.parent.base_disk: True}
    the_plan = plan(build.lab, facts, owner, journal.snapshot(), None, present)
    if the_plan.refusals:
        raise StageError(f"{label}: the host cannot take the build VM:\n  - " + "\n  - ".join(the_plan.refusals),
                         vm=label, stage="preflight", hint="fix these, then build again; nothing was changed")
    _step(progress, label, "build-vm", "start",
          f"{build.vm.name} on {build.lab.switch} ({build.lab.subnet}) from {build.parent.id}")
    applier = Applier(
        t, build.lab, the_plan, journal, owner, _answer_file(build, password),
        lambda _vm: Credential(GUEST_ADMIN, password), progress,
        ApplyOptions(max_workers=1, timeouts=Timeouts(values=dict(STEP_TIMEOUTS))),
        _bootstrap_context(conn, wish, journal.path.parent),
    )
    report = applier.prepare(ApplyReport(notes=applier.context.notes))
    outcome = applier.chain(build.vm, report)
    if not outcome.ok:
        err = outcome.error
        said = err.message if err is not None else "failed"
        raise StageError(f"{label}: the build VM {build.vm.name} failed at {outcome.stage}: {said}", vm=label,
                         stage=outcome.stage, cause=getattr(err, "cause", None),
                         hint=err.hint if err is not None else None) from err
    if not build.docker and applier.bootstrap is not None:
        # Features only: the chain stopped at readiness (no container-host role); the features stage now.
        applier.resumable(build.vm.name, "features", partial(applier.bootstrap.features, build.vm))
    ctx = applier.context
    cleaned = _golden_clean(ctx, build, progress)
    _sysprep(ctx, build, progress)
    disk = _standalone_disk(conn, build, ctx.disk_path(build.vm), applier, progress)
    record = _record(build, wish, built_by, cleaned)
    sidecar = build.image.base_disk + ".labctl.json"
    _step(progress, label, "sidecar", "start", sidecar)
    _host_call(conn, label, "sidecar", ops.write_host_text(sidecar, json.dumps(record, indent=2)))
    _step(progress, label, "sidecar", "done", sidecar)
    return GoldenResult(build.image.id, disk, sidecar, build.parent.base_disk, record, cleaned,
                        notes=list(applier.context.notes))


def _golden_clean(ctx: StageContext, build: _Build, progress: Progress) -> dict[str, list[str]]:
    label = build.label
    _step(progress, label, "golden-clean", "start", "answer files, Docker TLS and identity, container networks")
    obj = _guest_step(ctx, build, "golden-clean", [])
    cleaned = {"removed": [str(v) for v in _as_list(_get(obj, "Removed"))],
               "kept": [str(v) for v in _as_list(_get(obj, "Kept"))]}
    _step(progress, label, "golden-clean", "done", f"{len(cleaned['removed'])} removed")
    return cleaned


def _sysprep(ctx: StageContext, build: _Build, progress: Progress) -> None:
    """sysprep /generalize /oobe /shutdown /mode:vm; its refusal raised with setuperr.log's lines."""
    label = build.label
    vm = build.vm
    xml = render_generalize(build.image, build.parent)
    _step(progress, label, "sysprep", "start", "generalizing (/generalize /oobe /shutdown /mode:vm)")
    try:
        obj = _guest_step(ctx, build, "sysprep", [xml])
    except (StageError, TransientError) as err:
        # The guest may go down before PowerShell Direct delivers the answer: Off then means sysprep finished.
        if ctx.vm_state(vm) in ("Off", "Stopping"):
            obj = None
        else:
            raise StageError(f"{label}: sysprep failed in {vm.name}: {err.message}", vm=label, stage="sysprep",
                             cause=getattr(err, "cause", None)) from err
    if obj is not None:
        code = _get(obj, "ExitCode")
        errors = [str(line) for line in _as_list(_get(obj, "Errors")) if str(line).strip()]
        if code not in (0, "0"):
            quoted = "\n    ".join(errors[-SETUPERR_LINES:]) or "(setuperr.log has no lines)"
            raise StageError(
                f"{label}: sysprep refused to generalize {vm.name} (exit code {code}):\n    {quoted}", vm=label,
                stage="sysprep", cause="sysprep's own validation failed (C:\\Windows\\System32\\Sysprep\\Panther\\"
                                       "setuperr.log in the build VM)",
                hint="fix what sysprep says in the parent image or the recipe, then build again")
    _step(progress, label, "sysprep", "start", "waiting for the VM to shut down")
    try:
        ctx.wait_state(vm, "Off", "sysprep")
    except StageError as err:
        raise StageError(f"{label}: {vm.name} did not shut down after sysprep: {err.message}", vm=label,
                         stage="sysprep", cause="sysprep exited 0 but Windows did not shut down") from err
    _step(progress, label, "sysprep", "done", f"{vm.name} generalized and off")


def _standalone_disk(conn: HostConnection, build: _Build, build_disk: str, applier: Applier,
                     progress: Progress) -> str:
    """The build VM removed (its disk kept), the disk converted to a standalone VHDX, moved to base_disk,
    read-only."""
    label = build.label
    target = build.image.base_disk
    _step(progress, label, "disk", "start", f"removing the build VM {build.vm.name} (its disk stays)")
    found = applier.context.find_vm(build.vm)
    if found is not None:
        _host_call(conn, label, "disk", ops.remove_vm_by_id(str(found.get("Id"))))
    staged = f"{applier.root}\\golden.vhdx"
    _step(progress, label, "disk", "start", f"Convert-VHD: {build_disk} and its parent into one standalone disk")
    _host_call(conn, label, "disk", ops.convert_to_standalone_disk(build_disk, staged))
    folder = target.rsplit("\\", 1)[0]
    _host_call(conn, label, "disk", ops.new_directory(folder))
    _step(progress, label, "disk", "start", f"moving it to {target} (read-only)")
    _host_call(conn, label, "disk", ops.move_host_file(staged, target))
    _host_call(conn, label, "disk", ops.mark_read_only(target))
    _step(progress, label, "disk", "done", target)
    return target


def _record(build: _Build, wish: DockerWish, built_by: str | None,
            cleaned: dict[str, list[str]]) -> dict[str, Any]:
    """The sidecar (images-contract): ownership, the recipe, when, from what, who built it."""
    recipe: Any = build.image.build
    dumped = recipe.model_dump(mode="json", by_alias=True, exclude_none=True) if recipe is not None else {}
    return {
        "labctl-owned": True,
        "image": build.image.id,
        "recipe": dumped,
        "built": datetime.now(UTC).isoformat(timespec="seconds"),
        "source": {"from": build.parent.id, "parent": build.parent.base_disk},
        "lab": built_by or build.lab.name,
        "os_build": build.image.os_build,
        "golden": {
            "disk": "standalone (Convert-VHD of the build VM's differencing disk)",
            "features": list(build.features),
            "docker": wish.version if build.docker else None,
            "container_images": list(build.vm.container_images),
            "removed_before_sysprep": cleaned.get("removed", []),
        },
    }


# -- the build lab ---------------------------------------------------------------------------------------------


def _plan_build(image: ImageEntry, parent: ImageEntry, facts: HostFacts, wish: DockerWish) -> _Build:
    recipe: Any = image.build
    boot: Any = getattr(recipe, "bootstrap", None)
    features = tuple(getattr(boot, "features", None) or SUPPORTED_FEATURES)
    docker = bool(getattr(boot, "docker", True))
    kinds = list(getattr(boot, "container_images", None) or []) if docker else []
    label = f"image {image.id}"
    unknown = [f for f in features if f not in SUPPORTED_FEATURES]
    if unknown or "Containers" not in features:
        raise StageError(f"{label}: bootstrap.features {', '.join(features)}: a golden container host takes "
                         f"Containers and optionally Hyper-V (not {', '.join(unknown) or 'without Containers'})",
                         vm=label, stage="recipe", hint="fix build.bootstrap.features in the image file")
    if kinds and not docker:
        raise StageError(f"{label}: bootstrap.container_images need docker: true", vm=label, stage="recipe")
    subnet = _free_subnet(facts)
    hosts = list(subnet.hosts())
    gateway, address = str(hosts[0]), str(hosts[9])
    name = "golden-" + hashlib.sha256(image.id.encode()).hexdigest()[:8]  # 15 characters: a NetBIOS name
    digest = hashlib.sha256(("mac:" + image.id).encode()).digest()
    mac = "00-15-5D-" + "-".join(f"{b:02X}" for b in digest[:3])
    lab_name = build_lab_name(image.id)
    vm = DesiredVm(
        name=name, image=parent.id, base_disk=parent.base_disk, build=parent.os_build, processors=BUILD_PROCESSORS,
        memory=max(BUILD_MEMORY, int(parent.min_memory)), mac=mac, ip=address, prefix_length=subnet.prefixlen,
        roles=("container-host",) if docker else (),
        nested="Hyper-V" in features,  # DesiredVm.windows_features: Hyper-V for nested guests
        isolation="process", container_images=tuple(container_image_ref(k, parent.container_tag) for k in kinds),
    )
    lab = DesiredLab(
        name=lab_name, switch=f"labctl-{lab_name}", subnet=str(subnet), gateway=gateway, nat=True,
        nat_name=f"labctl-{lab_name}", vms=(vm,), docker=wish, container_cidr=DEFAULT_CONTAINER_CIDR,
    )
    return _Build(image, parent, lab, vm, features, docker)


def _free_subnet(facts: HostFacts) -> ipaddress.IPv4Network:
    """A /24 for the build lab that overlaps no NAT on the host and no container NAT range in guests."""
    taken = []
    for nat in facts.nats:
        try:
            taken.append(ipaddress.ip_network(nat.prefix, strict=False))
        except ValueError:
            continue
    container = ipaddress.ip_network(DEFAULT_CONTAINER_NAT)
    for candidate in BUILD_SUBNETS.subnets(new_prefix=24):
        if not any(candidate.overlaps(n) for n in taken) and not candidate.overlaps(container):
            return candidate
    raise StageError("no free /24 in 10.255.0.0/16 for an image build's network", vm="host", stage="preflight")


def _answer_file(build: _Build, password: Secret) -> Callable[[DesiredVm], str]:
    """The build VM's first-boot answer file: labctl's default template, as for any lab VM."""
    dirs = [str(d) for d in template_search_dirs()]
    state = str(Path.cwd())
    vm = build.vm
    rvm = ResolvedVm(
        name=vm.name, image=build.parent, processors=vm.processors, memory_bytes=vm.memory, disk_bytes=0,
        ip=vm.ip, prefix_length=vm.prefix_length, gateway=build.lab.gateway, dns=list(DEFAULT_DNS), mac=vm.mac,
        template="default", vars={"timezone": "UTC", "locale": "en-US"}, roles=list(vm.roles), nested=vm.nested,
        isolation="process", group=None,
    )
    rlab = ResolvedLab(
        name=build.lab.name, source="(image build)", lab_dir=state, state_dir=state,
        host=ResolvedSimHost(state_dir=state),
        network=ResolvedNetwork(switch=build.lab.switch, subnet=build.lab.subnet, prefix_length=vm.prefix_length,
                                gateway=build.lab.gateway, nat=True, nat_name=build.lab.nat_name,
                                dns=list(DEFAULT_DNS), container_nat=DEFAULT_CONTAINER_NAT,
                                container_cidr=DEFAULT_CONTAINER_CIDR),
        vms=[rvm], docker=ResolvedDocker(version=DEFAULT_DOCKER_VERSION, url="", path=None, sha256=None),
        guest_password=SecretSource(kind="generated"), template_dirs=dirs,
    )

    def render(_vm: DesiredVm) -> str:
        return render_unattend(rlab, rvm, password.reveal())

    return render


def render_generalize(image: ImageEntry, parent: ImageEntry) -> str:
    """The answer file sysprep gets (templates/unattend/generalize.xml.j2): the generalize pass only."""
    env = environment_for([str(d) for d in template_search_dirs()])
    return env.get_template(GENERALIZE_TEMPLATE).render(image=image, parent=parent)


def _bootstrap_context(conn: HostConnection, wish: DockerWish, pki: Path) -> BootstrapContext:
    if wish.path is not None:
        source = release.ZipSource(version=wish.version, path=Path(wish.path), sha256=wish.sha256)
    elif conn.simulated:
        source = release.mirror_source(wish.version, conn.endpoint.uri, conn.endpoint.fingerprint)
    else:
        source = release.ZipSource(version=wish.version, url=wish.url, sha256=wish.sha256)
    return BootstrapContext(zip_source=source, pki_dir=pki / "docker", simulated=conn.simulated)


def _docker_wish(docker: ResolvedDocker | None) -> DockerWish:
    if docker is None:
        version = DEFAULT_DOCKER_VERSION
        return DockerWish(version=version, url=DOCKER_URL_TEMPLATE.format(version=version))
    return DockerWish(version=docker.version, url=docker.url, path=docker.path, sha256=docker.sha256)


def _password() -> str:
    """A throwaway Administrator password for the build VM (kept in memory only; sysprep's oobe resets the
    account's state and every lab VM sets its own)."""
    alphabet = string.ascii_letters + string.digits
    core = "".join(secrets.choice(alphabet) for _ in range(20))
    return core + "aZ7!"  # every character class Windows' complexity rule counts


# -- cleanup ---------------------------------------------------------------------------------------------------


def _remove_build_lab(conn: HostConnection, lab: DesiredLab, journal: Journal, owner: Ownership,
                      progress: Progress, label: str) -> DestroyReport:
    """The build lab's VM, folder (build disk), NAT and switch, each read back from the host."""
    _step(progress, label, "cleanup", "start", f"removing the build lab {lab.name}")
    try:
        report = destroy(conn.transport, lab, _facts(conn), journal, owner, progress)
    except TransportError as err:
        report = DestroyReport(remaining=[f"the build lab {lab.name}: {err.message}"])
    _step(progress, label, "cleanup", "failed" if report.remaining else "done",
          "; ".join(report.remaining) if report.remaining else ", ".join(report.removed) or "nothing left")
    return report


def _clean_leftovers(conn: HostConnection, journal_file: Path, lab_name: str, facts: HostFacts,
                     progress: Progress, label: str) -> list[str]:
    """An earlier build of this image that was killed: its build lab goes before a new one starts."""
    if not journal_file.exists():
        return []
    old = Journal.open(journal_file, lab_name)
    owner = Ownership(lab_name, old.lab_id)
    leftover = DesiredLab(name=lab_name, switch=f"labctl-{lab_name}", subnet="10.255.0.0/24", gateway="10.255.0.1",
                          nat=True, nat_name=f"labctl-{lab_name}", vms=())
    _step(progress, label, "cleanup", "start", "removing what an interrupted build left")
    report = destroy(conn.transport, leftover, facts, old, owner, progress)
    if report.remaining:
        raise StageError(f"{label}: an earlier build left things the host does not let go of: "
                         + "; ".join(report.remaining), vm=label, stage="cleanup",
                         hint="remove them by hand (Hyper-V Manager), then build again")
    journal_file.unlink(missing_ok=True)
    return report.removed


# -- helpers ---------------------------------------------------------------------------------------------------


def _step(progress: Progress, label: str, step: str, status: str, detail: str = "") -> None:
    progress.stage(label, step, status, detail)


def _facts(conn: HostConnection) -> HostFacts:
    return parse_host_facts(conn.transport.invoke(host_facts_pipeline()))


def _exists(conn: HostConnection, path: str) -> bool:
    out = conn.transport.invoke(ops.test_path(path)).output
    return bool(out) and out[0] is True


def _host_call(conn: HostConnection, label: str, step: str, call: Any) -> None:
    """One host call of the build (never retried: each creates or moves something); its error names the step."""
    try:
        res = conn.transport.invoke(call, retry=False)
    except RemoteCommandError as err:
        raise StageError(f"{label}: {step}: {err.message}", vm=label, stage=step, cause=err.fqid or None) from err
    if res.errors:
        first = res.errors[0]
        raise StageError(f"{label}: {step}: {first.message}", vm=label, stage=step, cause=first.fqid or None)


def _guest_step(ctx: StageContext, build: _Build, name: str, arguments: list[object]) -> RemoteObject:
    """A guest step in the build VM; its one result object. Its error carries the guest's words."""
    label = build.label
    try:
        res = ctx.guest(build.vm, name, arguments)
    except RemoteCommandError as err:
        raise StageError(f"{label}: {name} failed in {build.vm.name}: {err.message}", vm=label, stage=name,
                         cause=err.fqid or None) from err
    obj = next(iter(res.objects()), None)
    if obj is None:
        said = res.errors[-1].message if res.errors else "no result"
        raise StageError(f"{label}: {name} failed in {build.vm.name}: {said}", vm=label, stage=name,
                         cause=res.errors[-1].fqid if res.errors else None)
    return obj


def _get(obj: Any, name: str) -> Any:
    if isinstance(obj, RemoteObject):
        return obj.get(name)
    if isinstance(obj, dict):
        return next((v for k, v in obj.items() if str(k).lower() == name.lower()), None)
    return None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]
