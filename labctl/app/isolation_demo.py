"""The isolation demo: process vs Hyper-V isolation of Windows containers, measured in one container host.

Two comparisons, from one run of the ``isolation-demo`` guest step (docs/guest-steps.md):

- the **same image** (nanoserver with the guest's own LTSC tag) under process and Hyper-V isolation: time to
  start, the kernel build seen inside against the guest's, whether the container's process shows in the
  guest's process list, the memory the utility VM costs;
- an **older image** (the previous LTSC that process isolation refuses on this guest): process isolation
  fails with Windows' real error (0xc0370101), Hyper-V isolation runs it on the image's own kernel.

Plain Python: no click or rich; the CLI prints the :class:`IsolationDemo` this returns.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from labctl.app.guest import StepRun, find_vm, guest_session, visible_properties
from labctl.app.secrets import Prompt
from labctl.errors import LabUsageError, RemoteCommandError, StageError
from labctl.lab.model import ResolvedLab, ResolvedVm, container_image_ref
from labctl.transport.base import RemoteObject

STEP = "isolation-demo"
# Windows Server LTSC container tags, oldest first, and the build each runs.
LTSC_BUILDS: dict[str, int] = {"ltsc2019": 17763, "ltsc2022": 20348, "ltsc2025": 26100}
# Older tags a host still runs process-isolated (docs/facts.md, "Version compatibility": WS2025 runs
# ltsc2022 process-isolated), so they cannot show the refusal the demo is about.
PROCESS_COMPATIBLE: dict[str, frozenset[str]] = {"ltsc2025": frozenset({"ltsc2022"})}
PROCESS = "process"
HYPERV = "hyperv"
SIMULATED_NOTE = "SIMULATED: figures modeled by the labctl simulator, not measured"
DEMO_LAB = "labs/isolation-demo.yaml"


# --- choosing the VM and the images ----------------------------------------------------------------------


def choose_vm(lab: ResolvedLab, name: str | None = None) -> ResolvedVm:
    """The container host to run the demo in: ``name``, or the lab's first container host with
    ``isolation: hyperv``, else its first nested container host. Every nested container host gets the
    Hyper-V feature (labctl/engine/bootstrap.py), which Hyper-V isolation needs; a VM with ``nested: false``
    cannot run Hyper-V isolated containers at all."""
    def usable(vm: ResolvedVm) -> bool:
        return "container-host" in vm.roles and vm.nested

    if name is not None:
        vm = find_vm(lab, name)
        if "container-host" not in vm.roles:
            raise LabUsageError(f"{vm.name} is not a container host (roles: {', '.join(vm.roles) or 'none'})",
                                field="roles", hint=f"add roles: [container-host] to {vm.name}, or use {DEMO_LAB}")
        if not vm.nested:
            raise LabUsageError(
                f"{vm.name} has nested: false, so it cannot run Hyper-V isolated containers (no virtualization "
                "extensions, no Hyper-V feature)",
                field="nested", hint=f"use {DEMO_LAB}, or set nested: true on {vm.name} in {lab.source} "
                "and rebuild it (labctl destroy, labctl up)")
        return vm
    hosts = [vm for vm in lab.vms if usable(vm)]
    for vm in hosts:
        if vm.isolation == HYPERV:
            return vm
    if hosts:
        return hosts[0]
    what = "no container host" if not any("container-host" in vm.roles for vm in lab.vms) \
        else "no nested container host"
    raise LabUsageError(f"lab {lab.name} has {what}: the demo needs a container host that can run Hyper-V "
                        "isolated containers (roles: [container-host], nested: true)",
                        field="roles", hint=f"use {DEMO_LAB}, or add such a VM to {lab.source} and run labctl up")


def older_tag(tag: str) -> str:
    """The newest LTSC tag older than ``tag`` that process isolation refuses on a ``tag`` guest."""
    order = list(LTSC_BUILDS)
    if tag not in order:
        raise LabUsageError(f"no nanoserver LTSC tag is known for container_tag {tag!r} (known: {', '.join(order)})",
                            field="image")
    skip = PROCESS_COMPATIBLE.get(tag, frozenset())
    for candidate in reversed(order[:order.index(tag)]):
        if candidate not in skip:
            return candidate
    raise LabUsageError(
        f"a {tag} guest has no older LTSC nanoserver image to refuse (ltsc2019 is the oldest one published)",
        field="image", hint=f"run the demo on a Windows Server 2022 or 2025 guest ({DEMO_LAB} uses ws2025-core)")


def images_for(tag: str) -> tuple[str, str]:
    """(the guest's own nanoserver image, the older one) for a guest whose catalog container_tag is ``tag``."""
    return container_image_ref("nanoserver", tag), container_image_ref("nanoserver", older_tag(tag))


# --- the step's output as typed results --------------------------------------------------------------------


@dataclass(frozen=True)
class IsolationRun:
    """One container started under one isolation, as the step measured it."""

    image: str
    isolation: str  # "process" or "hyperv"
    ok: bool
    error: str | None
    start_seconds: float | None
    kernel_build: int | None
    visible_in_guest: bool | None
    memory_overhead_mb: float | None

    def to_json(self) -> dict[str, Any]:
        return {"image": self.image, "isolation": self.isolation, "ok": self.ok, "error": self.error,
                "start_seconds": self.start_seconds, "kernel_build": self.kernel_build,
                "visible_in_guest": self.visible_in_guest, "memory_overhead_mb": self.memory_overhead_mb}


@dataclass(frozen=True)
class Comparison:
    """One image under both isolations."""

    image: str
    build: int | None  # the Windows build the image is made for
    process: IsolationRun
    hyperv: IsolationRun

    def to_json(self) -> dict[str, Any]:
        return {"image": self.image, "image_build": self.build, "process": self.process.to_json(),
                "hyperv": self.hyperv.to_json()}


@dataclass(frozen=True)
class IsolationDemo:
    """The whole demo: where it ran and both comparisons."""

    lab: str
    vm: str
    host: str
    simulated: bool
    guest_build: int | None
    same_image: Comparison
    older_image: Comparison

    @property
    def surprises(self) -> list[str]:
        """Runs that came out otherwise than Windows' rules say they should: the demo did not show its point."""
        found: list[str] = []
        for run in (self.same_image.process, self.same_image.hyperv, self.older_image.hyperv):
            if not run.ok:
                found.append(f"{run.image} with {run.isolation} isolation failed: {run.error or 'no error text'}")
        if self.older_image.process.ok:
            found.append(f"{self.older_image.image} ran with process isolation on build {self.guest_build}; "
                         "Windows refuses that (0xc0370101)")
        return found

    def to_json(self) -> dict[str, Any]:
        return {"lab": self.lab, "vm": self.vm, "host": self.host, "simulated": self.simulated,
                "guest_build": self.guest_build, "same_image": self.same_image.to_json(),
                "older_image": self.older_image.to_json(), "surprises": self.surprises,
                "note": SIMULATED_NOTE if self.simulated else None}


_BUILD = re.compile(r"(?:^|\D)(?:10\.0\.)?(\d{5})(?:\D|$)")


def parse_build(value: Any) -> int | None:
    """A Windows build number from 26100, "26100" or "10.0.26100.1742"."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    m = _BUILD.search(str(value))
    return int(m.group(1)) if m else None


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _flag(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def normalize_isolation(value: Any) -> str:
    """ "process", "hyperv", "Hyper-V", "HyperV" -> "process" / "hyperv"."""
    text = str(value or "").strip().lower().replace("-", "").replace("_", "")
    return HYPERV if text == "hyperv" else text


def _props(value: Any) -> dict[str, Any]:
    if isinstance(value, (RemoteObject, dict)):
        return {k.lower(): v for k, v in visible_properties(value).items()}
    return {}


def parse_output(output: list[Any]) -> tuple[int | None, list[IsolationRun]]:
    """(GuestBuild, Rows) from the step's output object (its Facts, or the object itself)."""
    obj = next((o for o in output if isinstance(o, (RemoteObject, dict))), None)
    props = _props(obj)
    if "facts" in props and _props(props["facts"]):
        props = _props(props["facts"])
    raw_rows = props.get("rows") or []
    if not isinstance(raw_rows, (list, tuple)):
        raw_rows = [raw_rows]  # PowerShell sends a one-element array as the element
    runs = []
    for raw in raw_rows:
        row = _props(raw)
        ok = bool(_flag(row.get("ok")))
        error = row.get("error")
        runs.append(IsolationRun(
            image=str(row.get("image") or ""), isolation=normalize_isolation(row.get("isolation")), ok=ok,
            error=str(error) if error not in (None, "") else None, start_seconds=_number(row.get("startseconds")),
            kernel_build=parse_build(row.get("kernelbuild")), visible_in_guest=_flag(row.get("visibleinguest")),
            memory_overhead_mb=_number(row.get("memoryoverheadmb")),
        ))
    return parse_build(props.get("guestbuild")), runs


def _tag_of(image: str) -> str:
    return image.rsplit(":", 1)[-1] if ":" in image else ""


def compare(runs: list[IsolationRun], image: str, vm: str) -> Comparison:
    """``image`` under process and Hyper-V isolation; a clear error when the step left one out."""
    found: dict[str, IsolationRun] = {}
    for run in runs:
        if run.image.lower() == image.lower() and run.isolation in (PROCESS, HYPERV):
            found.setdefault(run.isolation, run)
    missing = [iso for iso in (PROCESS, HYPERV) if iso not in found]
    if missing:
        raise StageError(f"{vm}: the {STEP} step reported no {' or '.join(missing)} isolation run of {image}",
                         vm=vm, stage=STEP, cause="the guest script and labctl disagree on the step's output "
                         "(docs/guest-steps.md)")
    return Comparison(image, LTSC_BUILDS.get(_tag_of(image)), found[PROCESS], found[HYPERV])


def _raise_if_failed(run: StepRun, *, output_expected: bool = True) -> None:
    """A step that wrote errors instead of its object (VM not running, script refused) as the error it is."""
    has_object = any(isinstance(o, (RemoteObject, dict)) for o in run.output)
    if run.errors and (not output_expected or not has_object):
        first = run.errors[0]
        raise RemoteCommandError(first.message, command=f"Invoke-Command ({run.step} in {run.vm})", fqid=first.fqid,
                                 category=first.category, target=first.target,
                                 hint="is the lab up? run labctl up, then labctl status")


def shape(run: StepRun, lab: ResolvedLab, vm: ResolvedVm, image: str, older: str) -> IsolationDemo:
    """The step's run as the demo's two comparisons."""
    _raise_if_failed(run)
    guest_build, runs = parse_output(run.output)
    return IsolationDemo(lab.name, vm.name, run.host, run.simulated, guest_build or vm.image.os_build,
                         compare(runs, image, vm.name), compare(runs, older, vm.name))


def run_demo(lab: ResolvedLab, vm_name: str | None = None, *, prompt: Prompt | None = None,
             progress: Callable[[str], None] | None = None) -> IsolationDemo:
    """Pick the VM and images, make sure the guest has both images, run the isolation-demo step, shape it.

    ``up`` gives a container host only the images of its own build; the older one is pulled here (the
    image-pull step pulls only what is missing) because the demo step refuses to pull silently.
    """
    vm = choose_vm(lab, vm_name)
    image, older = images_for(vm.image.container_tag)
    say = progress or (lambda _text: None)
    with guest_session(lab, vm=vm, prompt=prompt) as session:
        say(f"{vm.name}: making sure {image} and {older} are there (docker pull when missing)")
        _raise_if_failed(session.run(vm, "image-pull", [[image, older]]), output_expected=False)
        say(f"{vm.name}: running both images under process and Hyper-V isolation")
        run = session.run(vm, STEP, [image, older])
    return shape(run, lab, vm, image, older)


__all__ = ["Comparison", "IsolationDemo", "IsolationRun", "choose_vm", "compare", "images_for", "older_tag",
           "parse_output", "run_demo", "shape"]
