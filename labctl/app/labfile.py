"""The use cases on a lab file alone (no host): load it, validate it, render its answer files, its schema."""

from __future__ import annotations

from labctl.errors import LabUsageError, Problem
from labctl.lab import resolve_lab, validate
from labctl.lab.model import ResolvedLab, ResolvedVm
from labctl.lab.schema import schema_text
from labctl.render import check_lab_templates, render_unattend


def load(path: str) -> ResolvedLab:
    """The resolved lab; a bad file raises LabFileError (every problem, file:line: field)."""
    return resolve_lab(path)


def problems(lab_file: str) -> list[tuple[Problem, str]]:
    """Every problem of ``lab_file`` at once, each with the line to print; when the file itself is valid,
    its answer-file templates too."""
    found = [(p, str(p)) for p in validate(lab_file)]
    if not found:
        for err in check_lab_templates(resolve_lab(lab_file)):
            found.append((Problem(lab_file, None, f"vms.{err.vm}.template", err.message),
                          f"{lab_file}: vms: {err.vm}: template {err.template}: {err.message}"))
    return found


def schema() -> str:
    """The lab file's JSON schema, byte for byte what labctl/resources/schemas/lab.schema.json holds."""
    return schema_text()


def answer_files(lab: ResolvedLab, vm: str | None = None) -> list[tuple[str, str]]:
    """(VM name, its rendered unattend.xml with the password redacted), for ``vm`` or every VM."""
    vms = [find_vm(lab, vm)] if vm else list(lab.vms)
    return [(the_vm.name, render_unattend(lab, the_vm, redacted=True)) for the_vm in vms]


def find_vm(lab: ResolvedLab, name: str) -> ResolvedVm:
    """The lab's VM called ``name``; a clear error listing the lab's VMs otherwise (nothing is run)."""
    try:
        return lab.vm(name)
    except KeyError:
        names = ", ".join(vm.name for vm in lab.vms)
        raise LabUsageError(f"lab {lab.name} has no VM named {name!r}; its VMs: {names}", field="vms",
                            hint=f"name one of the VMs of {lab.source}") from None
