"""The use cases behind ``labctl ls`` and ``labctl destroy --orphaned``: the labs on one or more hosts, read from
their ownership tags, and the removal of those whose journal is gone. Nothing here prints.

Both work on already-open HostConnections (``list_labs``, ``destroy_orphans``), so a pool's integrator can pass
the hosts it has open; ``open_hosts`` opens the ones a command line names.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from labctl.app import connection
from labctl.app.connection import HostConnection, connect_host
from labctl.app.secrets import Prompt, resolve_secret
from labctl.engine.destroy import DestroyReport, destroy
from labctl.engine.inventory import (
    LabInstance,
    LabOnHost,
    NatVerdict,
    lab_folders,
    labs_on_host,
    orphan_nat,
    orphans,
)
from labctl.engine.journal import Journal
from labctl.engine.plan import DesiredLab
from labctl.engine.progress import Progress
from labctl.errors import ConnectError, LabUsageError, RemoteCommandError, TransportError
from labctl.hyperv import ops
from labctl.hyperv.facts import HostFacts, host_facts_pipeline, parse_host_facts
from labctl.lab.model import ResolvedLab
from labctl.lab.paths import STATE_DIR_NAME
from labctl.transport.psrp import Endpoint

__all__ = ["HostLabs", "HostSpec", "LabInstance", "LabOnHost", "OrphanRemoval", "destroy_orphans",
           "find_journals", "journal_dirs", "labs_on_hosts", "list_labs", "open_hosts"]


@dataclass(frozen=True)
class HostSpec:
    """A host named on the command line: a ``labctl sim serve`` endpoint.json (or its state folder), or an
    https WinRM URI with its user, the variable holding the password and the certificate's pinned fingerprint."""

    target: str
    username: str | None = None
    password_env: str | None = None
    fingerprint: str | None = None

    @property
    def is_uri(self) -> bool:
        return self.target.lower().startswith(("https://", "http://"))


@dataclass
class HostLabs:
    """The labs one host shows, read from their tags."""

    name: str  # the caller's name for the host (a --host value, or "host of <lab>")
    host: str  # the connection's description ("simulated Hyper-V host at ..." on the simulator)
    simulated: bool
    labs: list[LabOnHost]
    facts: HostFacts = field(repr=False)
    read_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "host": self.host, "simulated": self.simulated,
                "labs": [lab.to_json(self.read_at) for lab in self.labs]}


# --- where journals are --------------------------------------------------------------------------------------


def journal_dirs(lab_file: str | Path | None, extra: Iterable[str | Path] = ()) -> list[Path]:
    """The folders whose ``.labctl/`` trees hold the journals that count as at hand: the lab file's folder, else
    the current folder and its ``labs/`` (where ``labctl init`` puts lab files), plus ``extra``."""
    dirs = [Path(lab_file).resolve().parent] if lab_file else [Path.cwd(), Path.cwd() / "labs"]
    dirs += [Path(d).resolve() for d in extra]
    return list(dict.fromkeys(d.resolve() for d in dirs))


def find_journals(dirs: Iterable[Path]) -> dict[str, Path]:
    """lab id -> journal path for every ``.labctl/<lab>/journal.json`` and ``.labctl/<lab>/copy-<K>/journal.json``
    under ``dirs``."""
    found: dict[str, Path] = {}
    for base in dirs:
        root = base / STATE_DIR_NAME
        for path in sorted([*root.glob("*/journal.json"), *root.glob("*/copy-*/journal.json")]):
            lab_id = Journal.read_lab_id(path)
            if lab_id:
                found.setdefault(lab_id, path)
    return found


# --- hosts ---------------------------------------------------------------------------------------------------


def _endpoint_info(target: str) -> dict[str, object]:
    path = Path(target)
    if path.is_dir():
        path = path / "endpoint.json"
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConnectError(f"--host {target}: no readable simulator endpoint.json there ({exc.__class__.__name__})",
                           endpoint=target, hint="start it with `labctl sim serve --state DIR` and pass "
                                                 "DIR/endpoint.json, or pass an https URI") from exc
    if not isinstance(info, dict) or not all(k in info for k in ("https_uri", "username", "password",
                                                                     "fingerprint")):
        raise ConnectError(f"--host {target}: not a labctl simulator endpoint.json", endpoint=target)
    return info


def _open_host(spec: HostSpec, workers: int, prompt: Prompt | None) -> HostConnection:
    if not spec.is_uri:
        endpoint = connection.sim_endpoint(_endpoint_info(spec.target))
        return connection.connect_endpoint(endpoint, workers=workers, simulated=True)
    if not spec.username:
        raise LabUsageError(f"--host {spec.target} needs --username", field="--username")
    if spec.password_env:
        password = resolve_secret("env", spec.password_env, what="host password")
    else:
        password = resolve_secret("prompt", None, what=f"password of {spec.username} on {spec.target}",
                                  prompt=prompt)
    fingerprint = spec.fingerprint.split(":", 1)[1] if spec.fingerprint and ":" in spec.fingerprint \
        else spec.fingerprint
    endpoint = Endpoint(uri=spec.target, auth="ntlm", username=spec.username, password=password, verify=True,
                        fingerprint=fingerprint)
    return connection.connect_endpoint(endpoint, workers=workers)


@contextmanager
def open_hosts(lab: ResolvedLab | None, hosts: Sequence[HostSpec], *, workers: int = 2,
               prompt: Prompt | None = None) -> Iterator[list[tuple[str, HostConnection]]]:
    """Open the lab's host or pool (when a lab is named) and each ``--host``; each host once (by its URI)."""
    with ExitStack() as stack:
        conns: list[tuple[str, HostConnection]] = []
        seen: set[str] = set()

        def keep(name: str, conn: HostConnection) -> None:
            stack.callback(conn.close)
            if conn.endpoint.uri not in seen:
                seen.add(conn.endpoint.uri)
                conns.append((name, conn))

        if lab is not None:  # a pool's every host (hosts:), else the lab's one host
            pool = list(zip(lab.host_keys, lab.hosts, strict=False)) if lab.hosts else [(lab.name, lab.host)]
            for key, host in pool:
                keep(f"host {key} of {lab.name}" if lab.hosts else f"host of {lab.name}",
                     connect_host(host, workers=workers, prompt=prompt))
        for spec in hosts:
            keep(spec.target, _open_host(spec, workers, prompt))
        yield conns


# --- ls ------------------------------------------------------------------------------------------------------


def _read_host(name: str, conn: HostConnection, journals: Mapping[str, Path]) -> HostLabs:
    """Two round trips: the host's facts, then the files of every tagged lab's folder."""
    t = conn.transport
    facts = parse_host_facts(t.invoke(host_facts_pipeline()))
    folders = sorted(set(lab_folders(facts).values()))
    files: list[tuple[str, int]] = []
    if folders:
        for obj in t.invoke(ops.lab_folder_files(folders)).objects():
            try:
                files.append((str(obj.get("FullName") or ""), int(obj.get("Length") or 0)))
            except (TypeError, ValueError):
                continue
    labs = labs_on_host(facts, files, {k: str(v) for k, v in journals.items()})
    return HostLabs(name, conn.description, conn.simulated or facts.simulated, labs, facts)


def list_labs(conns: Sequence[tuple[str, HostConnection]], known_journals: Mapping[str, Path]) -> list[HostLabs]:
    """Every labctl lab on each host (read in parallel), with whether its journal is among ``known_journals``
    (lab id -> journal path, see find_journals)."""
    if not conns:
        return []
    with ThreadPoolExecutor(max_workers=min(len(conns), 8)) as pool:
        return list(pool.map(lambda nc: _read_host(nc[0], nc[1], known_journals), conns))


# --- destroy --orphaned --------------------------------------------------------------------------------------


@dataclass
class OrphanRemoval:
    """What removing one orphaned lab id did, as the host shows it afterwards."""

    lab: str
    lab_id: str
    copy: int | None
    host: str
    report: DestroyReport


def _vm_paths(conn: HostConnection) -> dict[str, str]:
    return {str(o.get("Id")): str(o.get("Path") or "") for o in conn.transport.invoke(ops.list_vms()).objects()}


def _addresses(conn: HostConnection) -> list[tuple[str, str]]:
    res = conn.transport.invoke(ops.host_ipv4_addresses())
    return [(str(o.get("IPAddress") or ""), str(o.get("InterfaceAlias") or "")) for o in res.objects()]


def _remove_nat(conn: HostConnection, verdict: NatVerdict, switches: Sequence[str], report: DestroyReport) -> None:
    """Remove the NetNat the verdict allows, once the switches it served are verified gone; read back."""
    nat = verdict.nat
    if nat is None:
        return
    if not verdict.remove:
        report.kept.append(f"nat {nat.name} ({verdict.why_kept})")
        return
    left = [s for s in switches if f"switch {s}" not in report.removed]
    if left:
        report.kept.append(f"nat {nat.name} (its switch {', '.join(left)} is still there; run again)")
        return
    why = ""
    try:
        res = conn.transport.invoke(ops.remove_nat(nat.name))
        why = res.errors[-1].message if res.errors else ""
    except (RemoteCommandError, TransportError) as err:
        why = err.message
    if conn.transport.invoke(ops.find_nat(nat.name)).objects():
        report.remaining.append(f"nat {nat.name}: {why or 'the host reported no error, but it is still there'}")
    else:
        report.removed.append(f"nat {nat.name}")


def _remove_instance(conn: HostConnection, inst: LabInstance, facts: HostFacts, addresses: list[tuple[str, str]],
                     vm_paths: Mapping[str, str], progress: Progress | None) -> DestroyReport:
    """One orphaned lab id: its tagged VMs (and their disks), its lab folder and tagged switches through the
    engine's destroy, with an empty journal that lives in a temporary folder (the lab's own is gone), then its
    NetNat when orphan_nat allows it."""
    owner = inst.owner
    tagged = {v.id for v in facts.vms if v.owner == owner}
    squatters = sorted(v.name for v in facts.vms if v.id not in tagged and v.owner is None
                       and vm_paths.get(v.id, "").lower().startswith(inst.folder.lower()))
    if squatters:  # an untagged VM in the lab folder: never touched, so its folder stays too
        report = DestroyReport()
        report.kept += [f"vm {n} (no ownership tag, but it lives in {inst.folder}: the lab is left as it is; "
                        "remove that VM yourself, then run again)" for n in squatters]
        return report
    verdict = orphan_nat(inst.lab, facts, addresses, inst.switches)
    want = DesiredLab(name=inst.lab, switch="", subnet="0.0.0.0/32", gateway="", nat=False, nat_name="", vms=(),
                      copy=inst.copy)
    with tempfile.TemporaryDirectory(prefix="labctl-orphan-") as scratch:
        journal = Journal(Path(scratch) / "journal.json",
                          {"lab": inst.lab, "lab_id": inst.lab_id, "host": {}, "vms": {}})
        report = destroy(conn.transport, want, facts, journal, owner, progress, vm_paths={})
    _remove_nat(conn, verdict, inst.switches, report)
    return report


def destroy_orphans(conns: Sequence[tuple[str, HostConnection]], known_journals: Mapping[str, Path],
                    confirm: Callable[[list[HostLabs]], bool], progress: Progress | None = None,
                    journals_again: Callable[[], Mapping[str, Path]] | None = None,
                    ) -> tuple[list[HostLabs], list[OrphanRemoval]]:
    """Remove the labs on these hosts whose journal is gone, by ownership tag only, after ``confirm`` (given
    every host's labs) says yes. The journals are looked up again just before (``journals_again``), and a lab
    id that has found its journal meanwhile, or that the host no longer shows, is left alone. Returns the listing
    and what each removal did."""
    listing = list_labs(conns, known_journals)
    if not any(orphans(h.labs) for h in listing) or not confirm(listing):
        return listing, []
    agreed = {(h.name, i.lab_id) for h in listing for i in orphans(h.labs)}
    journals = journals_again() if journals_again is not None else known_journals
    done: list[OrphanRemoval] = []
    for name, conn in conns:
        now = _read_host(name, conn, journals)
        chosen = [i for i in orphans(now.labs) if (name, i.lab_id) in agreed]
        if not chosen:
            continue
        addresses = _addresses(conn)
        vm_paths = _vm_paths(conn)
        for inst in chosen:
            report = _remove_instance(conn, inst, now.facts, addresses, vm_paths, progress)
            done.append(OrphanRemoval(inst.lab, inst.lab_id, inst.copy, conn.description, report))
    return listing, done


def labs_on_hosts(lab: ResolvedLab | None, hosts: Sequence[HostSpec], dirs: Sequence[Path],
                  prompt: Prompt | None = None) -> list[HostLabs]:
    """``labctl ls``: open the lab's host (or pool) and ``hosts``, list every lab on each, journals from ``dirs``."""
    with open_hosts(lab, hosts, prompt=prompt) as conns:
        return list_labs(conns, find_journals(dirs))
