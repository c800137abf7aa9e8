"""Docker contexts for lab VMs: ``docker context create`` with the lab's TLS material (``labctl env --context``).

Docker's own docs now recommend a context over DOCKER_HOST/DOCKER_TLS_VERIFY/DOCKER_CERT_PATH. labctl runs the
user's docker CLI (argument lists, never a shell) so the context lands wherever that CLI keeps its config
(``DOCKER_CONFIG`` or ~/.docker). A context labctl made carries a description naming the lab and VM; labctl
updates or removes only such a context, never one the user made under the same name.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from labctl.errors import LabctlError, LabUsageError

MARK = "made by labctl for lab {lab}, VM {vm}"
_NAME = re.compile(r"[^a-zA-Z0-9_.+-]+")


@dataclass(frozen=True)
class ContextResult:
    """What was done: ``created``, ``updated``, ``removed`` or ``absent``, and whether it is in use."""

    name: str
    action: str
    current: bool = False


def context_name(lab: str, vm: str) -> str:
    """``labctl-<lab>-<vm>`` in the characters docker accepts for a context name."""
    return _NAME.sub("-", f"labctl-{lab}-{vm}".lower()).strip("-")


def _docker() -> str:
    path = shutil.which("docker")
    if path is None:
        raise LabUsageError("the docker CLI is not installed on this machine (a context is docker's own setting)",
                            hint="install the docker CLI, or use labctl env without --context "
                                 "(environment variables need no docker CLI to be written)")
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run([_docker(), *args], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LabctlError(f"docker {args[0]} {args[1] if len(args) > 1 else ''}: {exc}".strip()) from exc


def _description(name: str) -> str | None:
    """The description of context ``name``, or None when there is no such context."""
    res = _run("context", "inspect", name)
    if res.returncode != 0:
        return None
    try:
        data = json.loads(res.stdout)
        return str((data[0].get("Metadata") or {}).get("Description") or "")
    except (ValueError, IndexError, AttributeError):
        return ""


def _current() -> str:
    res = _run("context", "show")
    return res.stdout.strip() if res.returncode == 0 else ""


def _endpoint(docker_host: str, cert_path: Path) -> str:
    parts = {"host": docker_host, "ca": str(cert_path / "ca.pem"), "cert": str(cert_path / "cert.pem"),
             "key": str(cert_path / "key.pem")}
    for key, value in parts.items():
        # docker parses --docker as comma-separated key=value pairs: a comma or quote in a path would split it.
        if any(ch in value for ch in ',"'):
            raise LabUsageError(f"the {key} path {value!r} holds a comma or quote, which docker's --docker "
                                "option cannot carry", hint="move the lab to a directory without them, or use "
                                "labctl env without --context")
    return ",".join(f"{k}={v}" for k, v in parts.items())


def _foreign(name: str, lab: str, vm: str) -> LabUsageError:
    return LabUsageError(f"a docker context named {name} exists and was not made by labctl for lab {lab}, VM {vm}",
                         hint=f"labctl leaves it alone; remove or rename it yourself (docker context rm {name})")


def write_context(lab: str, vm: str, docker_host: str, cert_path: Path) -> ContextResult:
    """Create (or bring up to date) the VM's context; the user's own context of that name is refused."""
    name = context_name(lab, vm)
    mark = MARK.format(lab=lab, vm=vm)
    endpoint = _endpoint(docker_host, cert_path)
    existing = _description(name)
    if existing is not None and existing != mark:
        raise _foreign(name, lab, vm)
    verb = "update" if existing is not None else "create"
    res = _run("context", verb, name, "--description", mark, "--docker", endpoint)
    if res.returncode != 0:
        raise LabctlError(f"docker context {verb} {name} failed: {res.stderr.strip() or res.stdout.strip()}")
    return ContextResult(name, "updated" if verb == "update" else "created", _current() == name)


def remove_context(lab: str, vm: str) -> ContextResult:
    """Remove the VM's context if labctl made it (switching docker back to ``default`` when it was in use)."""
    name = context_name(lab, vm)
    existing = _description(name)
    if existing is None:
        return ContextResult(name, "absent")
    if existing != MARK.format(lab=lab, vm=vm):
        raise _foreign(name, lab, vm)
    current = _current() == name
    if current:
        used = _run("context", "use", "default")
        if used.returncode != 0:
            raise LabctlError(f"docker context use default failed: {used.stderr.strip()}")
    res = _run("context", "rm", name)
    if res.returncode != 0:
        raise LabctlError(f"docker context rm {name} failed: {res.stderr.strip() or res.stdout.strip()}")
    if _description(name) is not None:  # report only what is verified
        raise LabctlError(f"docker context rm {name} reported success but the context is still there")
    return ContextResult(name, "removed", current)
