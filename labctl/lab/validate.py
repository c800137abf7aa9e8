"""Validate a lab file (every problem at once, each with file:line: field) and expand it into a ResolvedLab.

Validation and expansion share one resolver: expansion is what validation does on a file with no problems.
Sections that fail their model are validated key by key (``partial_validate``) so that one bad value does
not hide the cross-field checks of the others. Pure: it works on what the loader read (labctl.lab.files);
the path-taking entry points (validate, load_lab, resolve_lab) live there.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError

from labctl.errors import LabFileError, Problem
from labctl.lab.images import ImageCatalog
from labctl.lab.load import (
    LineMap,
    PathT,
    YamlSource,
    format_path,
    partial_validate,
    problems_from_validation,
)
from labctl.lab.model import (
    BUILTIN_DEFAULTS,
    DEFAULT_CONTAINER_NAT,
    DEFAULT_COPY_NAMES,
    DEFAULT_DNS,
    DOCKER_URL_TEMPLATE,
    LAB_NAME_RE,
    NAME_PLACEHOLDER_RE,
    NESTED_MIN_MEMORY,
    DockerSpec,
    LabFile,
    NetworkSpec,
    RemoteHost,
    ResolvedDocker,
    ResolvedLab,
    ResolvedNetwork,
    ResolvedRemoteHost,
    ResolvedSimHost,
    ResolvedVm,
    SecretSource,
    VmEntry,
    VmSettings,
    container_cidr,
)
from labctl.lab.paths import lab_state_dir, sim_state_dir, unattend_template_name
from labctl.lab.sizes import format_size

if TYPE_CHECKING:
    from labctl.lab.files import LabInputs

# Hyper-V refuses startup memory that is not a multiple of 2 MB ("must be a multiple of 2 MB").
MEMORY_ALIGNMENT = 2 * 1024**2
MAC_PREFIX = "00-15-5D"
_SECRET_KEY_RE = re.compile(r"(^|[_-])(password|passwd|pwd|secret|passphrase|token)$", re.IGNORECASE)
_COMPUTER_NAME_RE = re.compile(r"^[A-Za-z0-9-]+$")
MAX_COMPUTER_NAME = 15


@dataclass
class Lab:
    """A loaded lab file with no problems: the model, where it came from, and what it was checked against."""

    model: LabFile
    path: Path
    catalog: ImageCatalog
    template_dirs: list[Path]
    lines: LineMap = field(default_factory=LineMap)
    templates: dict[str, Path] = field(default_factory=dict)  # what the loader found in template_dirs
    local_files: dict[str, bool] = field(default_factory=dict)  # local files the lab names -> they exist


# --- public API --------------------------------------------------------------------------------------


def expand(lab: Lab) -> ResolvedLab:
    """Resolve a loaded lab: precedence, name patterns, IPs, MACs, images. Pure and deterministic."""
    source = YamlSource(str(lab.path), None, lab.lines, [])
    resolver = _Resolver(source, lab.catalog, lab.template_dirs, lab.path, lab.templates, lab.local_files)
    resolved = resolver.resolve_model(lab.model)
    if resolver.problems or resolved is None:
        raise LabFileError(resolver.problems)
    return resolved


def overlapping_prefixes(subnet: str, prefixes: Sequence[str]) -> list[str]:
    """The prefixes (e.g. the host's existing NetNat InternalIPInterfaceAddressPrefix values) that overlap
    ``subnet``. Unparseable prefixes are ignored: they cannot be routed either."""
    net = ipaddress.IPv4Network(subnet, strict=False)
    out = []
    for p in prefixes:
        try:
            other = ipaddress.IPv4Network(p.strip(), strict=False)
        except ValueError:
            continue
        if net.overlaps(other):
            out.append(p.strip())
    return out


def static_mac(lab_name: str, vm_name: str, salt: int = 0) -> str:
    """A stable MAC in Microsoft's 00-15-5D range derived from the lab and VM names."""
    key = f"{lab_name.lower()}/{vm_name.lower()}" + (f"#{salt}" if salt else "")
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return MAC_PREFIX + "".join(f"-{b:02X}" for b in digest[:3])


def expand_names(pattern: str, count: int | None, start: int = 1) -> list[str]:
    """Names of a VM entry: ``node{n:02d}`` with count 3 -> node01, node02, node03. Raise ValueError
    when the pattern is malformed or a count has nothing to number."""
    stripped = NAME_PLACEHOLDER_RE.sub("", pattern)
    if "{" in stripped or "}" in stripped:
        raise ValueError(f"{pattern!r}: the only placeholder is {{n}} or {{n:0Wd}} (zero-padded, e.g. {{n:02d}})")
    has_placeholder = stripped != pattern
    n = 1 if count is None else count
    if n > 1 and not has_placeholder:
        raise ValueError(f"count: {n} needs a {{n}} placeholder in the name, e.g. \"{pattern}{{n:02d}}\"")

    def one(k: int) -> str:
        return NAME_PLACEHOLDER_RE.sub(lambda m: str(k).zfill(int(m.group(1) or 0)), pattern)

    return [one(k) for k in range(start, start + n)]


def computer_name_problems(name: str) -> list[str]:
    """Why ``name`` cannot be a Windows computer name (NetBIOS rules), if it cannot."""
    out = []
    if len(name) > MAX_COMPUTER_NAME:
        out.append(f"{name!r} is {len(name)} characters; Windows computer names allow at most 15 (NetBIOS)")
    if not _COMPUTER_NAME_RE.match(name):
        out.append(f"{name!r} may only hold letters, digits and '-' (no spaces, dots or punctuation)")
    elif name.isdigit():
        out.append(f"{name!r} is all digits; Windows refuses numeric computer names")
    elif name.startswith("-") or name.endswith("-"):
        out.append(f"{name!r} starts or ends with '-', which DNS host names do not allow")
    return out


# --- analysis ----------------------------------------------------------------------------------------


def analyze(inputs: LabInputs) -> tuple[list[Problem], Lab | None, ResolvedLab | None]:
    """(every problem, the loaded lab, the resolved lab) of what the loader read; pure."""
    source, catalog, lab_path = inputs.source, inputs.catalog, inputs.lab_path
    problems: list[Problem] = list(source.problems) + list(catalog.problems)
    data = source.data
    if data is None:
        return problems, None, None
    if not isinstance(data, dict):
        problems.append(source.problem((), "a lab file is a mapping with name, network, vms, ..."))
        return problems, None, None

    secret_problems, secret_paths = _literal_secrets(source)
    problems += secret_problems

    model: LabFile | None = None
    try:
        model = LabFile.model_validate(data)
    except ValidationError as exc:
        problems += problems_from_validation(exc, source, LabFile, skip=secret_paths)

    resolver = _Resolver(source, catalog, inputs.template_dirs, lab_path, inputs.templates, inputs.local_files)
    resolved = resolver.resolve_model(model) if model is not None else resolver.resolve_raw(data)
    problems += resolver.problems
    if problems:
        lab_file = source.file
        # Lab-file problems in line order; problems in image files (other files) first, as they explain others.
        ordered = sorted(_dedupe(problems), key=lambda p: (p.file == lab_file, p.file, p.line or 0))
        return ordered, None, None
    assert model is not None
    lab = Lab(model=model, path=lab_path, catalog=catalog, template_dirs=inputs.template_dirs, lines=source.lines,
              templates=inputs.templates, local_files=inputs.local_files)
    return [], lab, resolved


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[Problem] = set()
    out = []
    for p in problems:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def _literal_secrets(source: YamlSource) -> tuple[list[Problem], set[PathT]]:
    """Any key that names a secret and holds a value: secrets never live in lab files."""
    problems: list[Problem] = []
    paths: set[PathT] = set()

    def walk(node: Any, path: PathT) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if _SECRET_KEY_RE.search(k) and v not in (None, "", [], {}):
                    here = (*path, k)
                    paths.add(here)
                    problems.append(source.problem(here, _secret_advice(path, k)))
                else:
                    walk(v, (*path, k))
        elif isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, (*path, i))

    walk(source.data, ())
    return problems, paths


def _secret_advice(parent: PathT, key: str) -> str:
    # The message never repeats the value: it may be a real password.
    base = "a literal secret does not belong in a lab file (it ends up in git and in logs); "
    if parent == ("host",):
        return base + ("name an environment variable instead: `password_env: LABCTL_HOST_PASSWORD`, "
                       "or use `password_from: keyring` or `password_from: prompt`")
    if parent == () and key.lower().startswith("guest"):
        return base + ("name an environment variable instead: `guest_password_env: LABCTL_GUEST_PASSWORD`, "
                       "or use `guest_password_from: keyring` or `guest_password_from: prompt`")
    return base + "pass it through an environment variable (…_env: VAR) and leave the value out of the file"


# --- the resolver ------------------------------------------------------------------------------------


@dataclass
class _Entry:
    index: int
    vm: VmEntry


@dataclass(frozen=True)
class _ClassSpec:
    """What the lab file says about copies and hosts (possibly partial, for validation)."""

    copies: int | None = None
    copy_names: str = DEFAULT_COPY_NAMES
    copy_passwords: Literal["per-copy", "shared"] = "per-copy"
    copy_pool: str | None = None
    hosts: list[RemoteHost | str] | None = None
    host_given: bool = False
    rdp: bool = False


_COPY_PLACEHOLDER_RE = re.compile(r"\{copy(?::0([1-9])d)?\}")


def copy_vm_name(pattern: str, name: str, copy: int) -> str:
    """``s{copy:02d}-{name}`` with node1 and copy 3 -> ``s03-node1``."""
    text = _COPY_PLACEHOLDER_RE.sub(lambda m: str(copy).zfill(int(m.group(1) or 0)), pattern)
    return text.replace("{name}", name)


def copy_pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` cannot name the VMs of copies, if it cannot."""
    rest = _COPY_PLACEHOLDER_RE.sub("", pattern).replace("{name}", "")
    if "{" in rest or "}" in rest:
        return (f"{pattern!r}: the placeholders are {{name}} and {{copy}} (or {{copy:02d}}, zero-padded); "
                "nothing else may be in braces")
    if "{name}" not in pattern or not _COPY_PLACEHOLDER_RE.search(pattern):
        return f"{pattern!r} needs both {{name}} and {{copy}} (e.g. \"s{{copy:02d}}-{{name}}\"), so names stay unique"
    return None


@dataclass
class _Net:
    net: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address
    switch: str
    nat: bool
    dns: list[str]
    container_nat: str


class _Resolver:
    """Turns (possibly partial) sections into resolved VMs, collecting problems with their lines."""

    def __init__(self, source: YamlSource, catalog: ImageCatalog, tdirs: list[Path], lab_path: Path,
                 templates: dict[str, Path], local_files: dict[str, bool]):
        self.source = source
        self.catalog = catalog
        self.tdirs = tdirs
        self.lab_path = lab_path
        self.templates = templates
        self.local_files = local_files
        self.problems: list[Problem] = []
        # (path, message) -> VM names; so a bad group value is reported once, naming the VMs it hits.
        self._grouped: dict[tuple[PathT, str], list[str]] = {}

    def add(self, path: PathT, message: str) -> None:
        self.problems.append(self.source.problem(path, message))

    def add_for_vm(self, origin: PathT, entry_path: PathT, vm_name: str, message: str) -> None:
        self._grouped.setdefault((origin, message), [])
        if origin[: len(entry_path)] != entry_path:  # the value came from a group or defaults
            self._grouped[(origin, message)].append(vm_name)

    def _flush_grouped(self) -> None:
        for (origin, message), names in self._grouped.items():
            if names:
                shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
                message = f"{message} (VMs: {shown})"
            self.add(origin, message)
        self._grouped.clear()

    # entry points

    def resolve_model(self, model: LabFile) -> ResolvedLab | None:
        return self._resolve(
            name=model.name, host=model.host, host_ok=True, network=model.network, defaults=model.defaults,
            groups=dict(model.groups), entries=[_Entry(i, v) for i, v in enumerate(model.vms)],
            guest_env=model.guest_password_env, guest_from=model.guest_password_from, docker=model.docker,
            klass=_ClassSpec(copies=model.copies, copy_names=model.copy_names, copy_passwords=model.copy_passwords,
                             copy_pool=model.network.copy_pool, hosts=list(model.hosts) if model.hosts else None,
                             host_given="host" in model.model_fields_set, rdp=model.rdp))

    def resolve_raw(self, data: dict[str, Any]) -> ResolvedLab | None:
        name = data.get("name")
        name_ok = isinstance(name, str) and re.match(LAB_NAME_RE, name) is not None
        raw_host = data.get("host", "sim")
        host: RemoteHost | str | None = None
        if raw_host == "sim":
            host = "sim"
        elif isinstance(raw_host, dict):
            h, _ = partial_validate(RemoteHost, raw_host)
            host = h if isinstance(h, RemoteHost) else None
        network = None
        if isinstance(data.get("network"), dict):
            n, _ = partial_validate(NetworkSpec, data["network"])
            # Without a valid subnet nothing about addresses can be checked.
            network = n if isinstance(n, NetworkSpec) else None
        defaults = _partial_settings(data.get("defaults"))
        groups: dict[str, VmSettings] = {}
        raw_groups = data.get("groups")
        if isinstance(raw_groups, dict):
            for g, v in raw_groups.items():
                groups[g] = _partial_settings(v)
        entries: list[_Entry] = []
        raw_vms = data.get("vms")
        if isinstance(raw_vms, list):
            for i, v in enumerate(raw_vms):
                e, _ = partial_validate(VmEntry, v)
                if isinstance(e, VmEntry):
                    entries.append(_Entry(i, e))
        guest_env = data.get("guest_password_env")
        guest_from = data.get("guest_password_from")
        docker: DockerSpec | None = DockerSpec()
        if "docker" in data:
            d, _ = partial_validate(DockerSpec, data["docker"])
            docker = d if isinstance(d, DockerSpec) else None
        copies = data.get("copies")
        names = data.get("copy_names")
        raw_hosts = data.get("hosts")
        hosts: list[RemoteHost | str] | None = None
        if isinstance(raw_hosts, list):
            hosts = []
            for h in raw_hosts:
                if h == "sim":
                    hosts.append("sim")
                elif isinstance(h, dict):
                    rh, _ = partial_validate(RemoteHost, h)
                    if isinstance(rh, RemoteHost):
                        hosts.append(rh)
        klass = _ClassSpec(
            copies=copies if isinstance(copies, int) and not isinstance(copies, bool) and copies >= 1 else None,
            copy_names=names if isinstance(names, str) and names else DEFAULT_COPY_NAMES,
            copy_pool=network.copy_pool if network is not None else None, hosts=hosts,
            host_given="host" in data, rdp=data.get("rdp") is True)
        self._resolve(
            name=name if name_ok and isinstance(name, str) else None, host=host, host_ok=host is not None,
            network=network, defaults=defaults, groups=groups, entries=entries,
            guest_env=guest_env if isinstance(guest_env, str) else None,
            guest_from=guest_from if guest_from in ("keyring", "prompt") else None, docker=docker, klass=klass)
        return None  # a file with model errors never resolves

    # the work

    def _resolve(self, *, name: str | None, host: RemoteHost | str | None, host_ok: bool,
                 network: NetworkSpec | None, defaults: VmSettings, groups: dict[str, VmSettings],
                 entries: list[_Entry], guest_env: str | None, guest_from: str | None,
                 docker: DockerSpec | None, klass: _ClassSpec) -> ResolvedLab | None:
        state_dir = lab_state_dir(self.lab_path, name or "lab")
        rhost = self._host(host, state_dir, name or "lab") if host_ok else None
        pool = self._pool(klass, state_dir, name or "lab")
        if klass.hosts:
            remote = next((h for h in klass.hosts if isinstance(h, RemoteHost)), None)
            guest = self._guest_password(remote or "sim", guest_env, guest_from)
        else:
            guest = self._guest_password(host, guest_env, guest_from)
        net = self._network(network, name or "lab")
        rdocker = self._docker(docker) if docker is not None else None

        names_seen: dict[str, tuple[str, PathT]] = {}
        explicit_ips: dict[ipaddress.IPv4Address, PathT] = {}
        planned: list[tuple[_Entry, list[str], list[ipaddress.IPv4Address | None]]] = []

        # Pass 1: names and explicit addresses (explicit addresses are reserved before auto-assignment).
        for entry in entries:
            vm = entry.vm
            epath: PathT = ("vms", entry.index)
            try:
                names = expand_names(vm.name, vm.count, vm.start)
            except ValueError as exc:
                self.add((*epath, "count") if "count:" in str(exc) else (*epath, "name"), str(exc))
                continue
            kinds: dict[str, str] = {}
            for n in names:
                for msg in computer_name_problems(n):
                    kinds.setdefault(msg.split(" ", 1)[1].split(";")[0], msg)
            for msg in kinds.values():
                self.add((*epath, "name"), msg + (f" (pattern {vm.name!r})" if len(names) > 1 else ""))
            for n in names:
                key = n.lower()
                if key in names_seen:
                    _, first_path = names_seen[key]
                    line = self.source.lines.line(first_path)
                    self.add((*epath, "name"), f"duplicate VM name {n!r} (also {format_path(first_path)}"
                             + (f", line {line})" if line else ")"))
                else:
                    names_seen[key] = (n, epath)
            ips: list[ipaddress.IPv4Address | None] = [None] * len(names)
            if vm.ip is not None:
                first = ipaddress.IPv4Address(vm.ip)
                for k in range(len(names)):
                    try:
                        fixed = first + k
                    except ipaddress.AddressValueError:
                        self.add((*epath, "ip"), f"{len(names)} replicas from {first} run past 255.255.255.255")
                        break
                    ips[k] = fixed
                    self._check_ip(fixed, net, (*epath, "ip"), explicit_ips, names[k], len(names) > 1)
            if vm.group is not None and vm.group not in groups:
                known = ", ".join(sorted(groups)) or "none are defined"
                self.add((*epath, "group"), f"unknown group {vm.group!r}; groups: {known}")
            planned.append((entry, names, ips))

        # Pass 2: effective settings and automatic addresses.
        used: set[ipaddress.IPv4Address] = set(explicit_ips)
        auto = _AddressPool(net, used) if net else None
        macs: set[str] = set()
        vms: list[ResolvedVm] = []
        for entry, names, ips in planned:
            vm = entry.vm
            epath = ("vms", entry.index)
            gname = vm.group if vm.group in groups else None
            group = groups.get(gname) if gname else None
            for k, vm_name in enumerate(names):
                ip = ips[k]
                if ip is None and auto is not None:
                    ip = auto.next()
                    if ip is None:
                        self.add(epath, f"no free address left in {net.net if net else '?'} for {vm_name}")
                resolved = self._vm(vm_name, entry, group, gname, defaults, net, ip, name, macs)
                if resolved is not None:
                    vms.append(resolved.model_copy(update={"index": len(vms)}))
        self._flush_grouped()

        if self.problems or name is None or rhost is None or net is None or guest is None or rdocker is None:
            return None
        if len(vms) != sum(len(n) for _, n, _ in planned):
            return None
        lab = ResolvedLab(
            name=name, source=str(self.lab_path.resolve()), lab_dir=str(self.lab_path.resolve().parent),
            state_dir=str(state_dir), host=rhost,
            network=ResolvedNetwork(
                switch=net.switch, subnet=str(net.net), prefix_length=net.net.prefixlen,
                gateway=str(net.gateway), nat=net.nat, nat_name=f"labctl-{name}", dns=net.dns,
                container_nat=net.container_nat, container_cidr=container_cidr(net.container_nat),
                nat_prefix=str(net.net)),
            vms=vms, docker=rdocker, guest_password=guest, template_dirs=[str(d) for d in self.tdirs],
            rdp=klass.rdp, class_state_dir=str(state_dir))
        if klass.copies is None:
            if klass.hosts:
                self.add(("hosts",), "a pool of hosts spreads the copies of a lab over them: add copies: N "
                         "(or use host: for a single host)")
                return None
            return lab
        if pool is None:
            return None
        return self._class(lab, klass, net, pool, state_dir)

    def _pool(self, klass: _ClassSpec, state_dir: Path, lab_name: str
              ) -> list[tuple[str, ResolvedSimHost | ResolvedRemoteHost]] | None:
        """The hosts copies are placed on, each with a stable key; None after a problem."""
        if not klass.hosts:
            return []
        if klass.host_given:
            self.add(("hosts",), "give either host: (one host) or hosts: (a pool), not both")
            return None
        out: list[tuple[str, ResolvedSimHost | ResolvedRemoteHost]] = []
        keys: dict[str, int] = {}
        ok = True
        for i, h in enumerate(klass.hosts):
            if isinstance(h, str):
                # Several simulated hosts in one pool: each has its own state.
                resolved: ResolvedSimHost | ResolvedRemoteHost | None = ResolvedSimHost(
                    state_dir=str(state_dir / f"sim-{i + 1}"))
                key = f"sim-{i + 1}"
            else:
                resolved = self._host(h, state_dir, lab_name, where=("hosts", i))
                key = f"{resolved.hostname}:{resolved.port}" if isinstance(resolved, ResolvedRemoteHost) else ""
            if resolved is None:
                ok = False
                continue
            if key.lower() in keys:
                self.add(("hosts", i), f"{key} is already hosts[{keys[key.lower()]}]; each host appears once")
                ok = False
                continue
            keys[key.lower()] = i
            out.append((key, resolved))
        return out if ok else None

    def _class(self, lab: ResolvedLab, klass: _ClassSpec, net: _Net,
               pool: list[tuple[str, ResolvedSimHost | ResolvedRemoteHost]], state_dir: Path) -> ResolvedLab | None:
        """The class: every copy of the lab as a unit with its own names, subnet, switch and state."""
        copies = klass.copies or 1
        problem = copy_pattern_problem(klass.copy_names)
        if problem:
            self.add(("copy_names",), problem)
            return None
        if klass.copy_pool is None:
            self.add(("copies",), "copies needs network.copy_pool, the range every copy's subnet is carved from: "
                     f"e.g. copy_pool: 10.50.0.0/16 gives the copies /{net.net.prefixlen} subnets in order "
                     "(the layout of network.subnet, moved)")
            return None
        cpool = ipaddress.IPv4Network(klass.copy_pool)
        if cpool.prefixlen > net.net.prefixlen:
            self.add(("network", "copy_pool"), f"{cpool} is smaller than one copy's subnet "
                     f"(network.subnet {net.net}); give a larger range such as {cpool.supernet(new_prefix=16)}")
            return None
        subnets = []
        for sub in cpool.subnets(new_prefix=net.net.prefixlen):
            subnets.append(sub)
            if len(subnets) == copies:
                break
        if len(subnets) < copies:
            self.add(("network", "copy_pool"), f"{cpool} holds {len(subnets)} subnets of /{net.net.prefixlen}; "
                     f"copies: {copies} needs {copies}")
            return None
        if cpool.overlaps(ipaddress.IPv4Network(net.container_nat)):
            self.add(("network", "copy_pool"), f"{cpool} overlaps {net.container_nat}, the range the container "
                     "NAT inside each guest uses; pick a pool such as 10.50.0.0/16")
            return None
        base = int(net.net.network_address)
        vms: list[ResolvedVm] = []
        units: list[ResolvedLab] = []
        seen: dict[str, tuple[int, str]] = {}
        reported: set[str] = set()
        macs: set[str] = set()
        bad = False
        for k in range(1, copies + 1):
            sub = subnets[k - 1]

            def moved(addr: str, sub: ipaddress.IPv4Network = sub) -> str:
                a = ipaddress.IPv4Address(addr)
                return str(sub.network_address + (int(a) - base)) if a in net.net else addr

            unit_vms: list[ResolvedVm] = []
            for vm in lab.vms:
                new = copy_vm_name(klass.copy_names, vm.name, k)
                for msg in computer_name_problems(new):
                    kind = msg.split(" ", 1)[1]
                    if kind not in reported:
                        reported.add(kind)
                        self.add(("copy_names",), f"{msg} (copy {k} of VM {vm.name}); shorten copy_names "
                                 "or the VM names")
                        bad = True
                if new.lower() in seen:
                    other_copy, other_vm = seen[new.lower()]
                    self.add(("copy_names",), f"copy {k} of {vm.name} and copy {other_copy} of {other_vm} "
                             f"are both named {new!r}")
                    bad = True
                seen[new.lower()] = (k, vm.name)
                mac = static_mac(lab.name, new)
                salt = 0
                while mac in macs:
                    salt += 1
                    mac = static_mac(lab.name, new, salt)
                macs.add(mac)
                unit_vms.append(vm.model_copy(update={
                    "name": new, "ip": moved(vm.ip), "gateway": moved(vm.gateway),
                    "dns": [moved(d) for d in vm.dns], "mac": mac, "copy_number": k, "base_name": vm.name,
                    "index": len(vms) + len(unit_vms)}))
            vms.extend(unit_vms)
            network = lab.network.model_copy(update={
                "switch": f"{net.switch}-{k}", "subnet": str(sub), "gateway": moved(lab.network.gateway),
                "dns": [moved(d) for d in lab.network.dns], "nat_prefix": str(cpool)})
            units.append(lab.model_copy(update={
                "state_dir": str(state_dir / f"copy-{k}"), "network": network, "vms": unit_vms, "copy_number": k,
                "copy_passwords": klass.copy_passwords}))
        if bad:
            return None
        hosts = [h for _, h in pool] or [lab.host]
        keys = [k for k, _ in pool] or ["sim" if isinstance(lab.host, ResolvedSimHost) else
                                       f"{lab.host.hostname}:{lab.host.port}"]
        units = [u.model_copy(update={"host": hosts[0]}) for u in units]
        return lab.model_copy(update={
            "vms": vms, "units": units, "network": units[0].network, "host": hosts[0], "hosts": hosts,
            "host_keys": keys, "copy_passwords": klass.copy_passwords})

    def _check_ip(self, ip: ipaddress.IPv4Address, net: _Net | None, path: PathT,
                  explicit: dict[ipaddress.IPv4Address, PathT], vm_name: str, replica: bool) -> None:
        what = f"{ip} (for {vm_name})" if replica else str(ip)
        if net is not None:
            if ip not in net.net:
                self.add(path, f"{what} is outside the lab subnet {net.net}")
                return
            if ip == net.net.network_address:
                self.add(path, f"{what} is the network address of {net.net}")
                return
            if ip == net.net.broadcast_address:
                self.add(path, f"{what} is the broadcast address of {net.net}")
                return
            if ip == net.gateway:
                self.add(path, f"{what} is the gateway (the host's address on the lab switch)")
                return
        if ip in explicit:
            first = explicit[ip]
            line = self.source.lines.line(first)
            self.add(path, f"duplicate IP {what} (also {format_path(first[:2])}"
                     + (f", line {line})" if line else ")"))
            return
        explicit[ip] = path

    def _vm(self, vm_name: str, entry: _Entry, group: VmSettings | None, gname: str | None,
            defaults: VmSettings, net: _Net | None, ip: ipaddress.IPv4Address | None,
            lab_name: str | None, macs: set[str]) -> ResolvedVm | None:
        epath: PathT = ("vms", entry.index)
        layers: list[tuple[PathT, BaseModel | None]] = [
            (epath, entry.vm), (("groups", gname) if gname else (), group), (("defaults",), defaults)]

        def pick(key: str) -> tuple[Any, PathT]:
            for path, layer in layers:
                if layer is not None and getattr(layer, key) is not None:
                    return getattr(layer, key), (*path, key)
            return BUILTIN_DEFAULTS[key], (*epath, key)

        ok = True
        image_id, image_path = pick("image")
        image = self.catalog.get(image_id)
        if image is None:
            available = ", ".join(self.catalog.ids()) or "none (no images/ directory found)"
            self.add_for_vm(image_path, epath, vm_name, f"unknown image {image_id!r}; available: {available}")
            ok = False
        processors, _ = pick("processors")
        memory, memory_path = pick("memory")
        disk, disk_path = pick("disk")
        nested, nested_path = pick("nested")
        isolation, isolation_path = pick("isolation")
        template, template_path = pick("unattend")
        roles, _ = pick("roles")
        images, images_path = pick("container_images")
        docker_tls, tls_path = pick("docker_tls")
        if len(set(images)) != len(images):
            self.add_for_vm(images_path, epath, vm_name, f"container_images lists an image twice: {images}")
            ok = False
        if docker_tls and "container-host" in roles and net is not None and not net.nat:
            self.add_for_vm(tls_path, epath, vm_name,
                            "docker_tls publishes each guest's Docker API on the host through the lab NAT "
                            "(Add-NetNatStaticMapping); it needs network.nat: true")
            ok = False
        if unattend_template_name(template) not in self.templates:
            where = ", ".join(str(d) for d in self.tdirs) or "no templates/ directory found"
            self.add_for_vm(template_path, epath, vm_name,
                            f"template {template!r} not found (looked for "
                            f"{unattend_template_name(template)} in: {where})")
            ok = False
        if memory % MEMORY_ALIGNMENT:
            self.add_for_vm(memory_path, epath, vm_name,
                            f"memory {format_size(memory)} is not a multiple of 2 MiB, which Hyper-V requires")
            ok = False
        if nested and memory < NESTED_MIN_MEMORY:
            self.add_for_vm(memory_path, epath, vm_name,
                            f"memory {format_size(memory)} is below 4GiB, the minimum for nested "
                            "virtualization (Hyper-V containers); raise it or set nested: false")
            ok = False
        elif image is not None and memory < image.min_memory:
            self.add_for_vm(memory_path, epath, vm_name,
                            f"memory {format_size(memory)} is below {format_size(image.min_memory)}, "
                            f"the minimum for {image.id}")
            ok = False
        if image is not None and disk < image.min_disk:
            self.add_for_vm(disk_path, epath, vm_name,
                            f"disk {format_size(disk)} is below {format_size(image.min_disk)}, "
                            f"the minimum for {image.id}")
            ok = False
        if isolation == "hyperv" and not nested:
            self.add_for_vm(isolation_path if isolation_path[:2] == nested_path[:2] else nested_path,
                            epath, vm_name, "isolation: hyperv runs containers in nested VMs; it needs nested: true")
            ok = False

        if not ok or image is None or net is None or ip is None or lab_name is None:
            return None
        mac = static_mac(lab_name, vm_name)
        salt = 0
        while mac in macs:  # astronomically rare; resolved in file order, so still deterministic
            salt += 1
            mac = static_mac(lab_name, vm_name, salt)
        macs.add(mac)
        return ResolvedVm(
            name=vm_name, image=image, processors=processors, memory_bytes=memory, disk_bytes=disk,
            ip=str(ip), prefix_length=net.net.prefixlen, gateway=str(net.gateway), dns=list(net.dns),
            mac=mac, template=template, vars=self._vars(layers), roles=list(roles), nested=nested,
            isolation=isolation, group=gname, container_images=list(images), docker_tls=docker_tls)

    @staticmethod
    def _vars(layers: list[tuple[PathT, BaseModel | None]]) -> dict[str, Any]:
        merged: dict[str, Any] = dict(BUILTIN_DEFAULTS["vars"])
        for _, layer in reversed(layers):
            if layer is not None and getattr(layer, "vars", None):
                merged = deep_merge(merged, layer.vars)  # type: ignore[attr-defined]
        return merged

    def _network(self, spec: NetworkSpec | None, lab_name: str) -> _Net | None:
        if spec is None:
            return None
        net = ipaddress.IPv4Network(spec.subnet)
        bad = False
        if net.prefixlen > 30:
            self.add(("network", "subnet"), f"{net} is too small; a lab needs at least a /30 "
                     "(a gateway and one VM)")
            bad = True
        container_nat = spec.container_nat
        if net.overlaps(ipaddress.IPv4Network(container_nat)):
            hint = ("the range Windows' container NAT picks from inside each guest"
                    if container_nat == DEFAULT_CONTAINER_NAT else "network.container_nat")
            self.add(("network", "subnet"), f"{net} overlaps {container_nat} ({hint}); containers in the "
                     "guests would shadow lab addresses. Pick another subnet such as 10.10.0.0/24")
        if spec.gateway is not None:
            gw = ipaddress.IPv4Address(spec.gateway)
            if gw not in net:
                self.add(("network", "gateway"), f"{gw} is outside the lab subnet {net}")
                bad = True
            elif gw in (net.network_address, net.broadcast_address):
                self.add(("network", "gateway"), f"{gw} is the network or broadcast address of {net}")
                bad = True
        else:
            gw = net.network_address + 1
        dns = list(spec.dns) if spec.dns is not None else list(DEFAULT_DNS)
        for i, d in enumerate(dns):
            a = ipaddress.IPv4Address(d)
            if a in (net.network_address, net.broadcast_address):
                self.add(("network", "dns", i), f"{a} is the network or broadcast address of {net}")
        if bad and net.prefixlen > 30:
            return None
        # A bad gateway is already reported; keep the subnet so VM addresses are still checked against it.
        if gw not in net or gw in (net.network_address, net.broadcast_address):
            gw = net.network_address + 1
        return _Net(net=net, gateway=gw, switch=spec.switch or f"labctl-{lab_name}", nat=spec.nat, dns=dns,
                    container_nat=container_nat)

    def _docker(self, spec: DockerSpec) -> ResolvedDocker | None:
        # docker.sha256 is required for a real host (unless docker.path is given), but whether a host is real
        # is only known once connected (a remote endpoint may be a simulator): `up` refuses it in preflight.
        p: PathT = ("docker",)
        ok = True
        if spec.url is not None and spec.path is not None:
            self.add((*p, "path"), "give either docker.url or docker.path, not both")
            ok = False
        path = None
        if spec.path is not None:
            local = Path(spec.path).expanduser()
            if not local.is_absolute():
                local = self.lab_path.resolve().parent / local
            if not self.local_files.get(str(local), False):
                self.add((*p, "path"), f"{local} does not exist (a local copy of docker-{spec.version}.zip)")
                ok = False
            path = str(local)
        if not ok:
            return None
        return ResolvedDocker(version=spec.version, url=spec.url or DOCKER_URL_TEMPLATE.format(version=spec.version),
                              path=path, sha256=spec.sha256.lower() if spec.sha256 else None)

    def _host(self, host: RemoteHost | str | None, state_dir: Path, lab_name: str, where: PathT = ("host",)
              ) -> ResolvedSimHost | ResolvedRemoteHost | None:
        if host is None:
            return None
        if isinstance(host, str):
            return ResolvedSimHost(state_dir=str(sim_state_dir(self.lab_path, lab_name)))
        p: PathT = where
        if host.uri.strip().lower() == "local" or host.uri.lower().startswith("ssh://"):
            return self._oop_host(host, p)
        uri = host.uri if "://" in host.uri else f"https://{host.uri}"
        parts = urlsplit(uri)
        ok = True
        if parts.scheme not in ("http", "https"):
            self.add((*p, "uri"), f"scheme {parts.scheme!r} is not http, https or ssh (or write uri: local)")
            return None
        for name in ("key_file", "host_key_fingerprint", "known_hosts"):
            if getattr(host, name) is not None:
                self.add((*p, name), f"{name} is for uri: ssh://user@host; WinRM over {parts.scheme} does not use it")
                ok = False
        try:
            port = parts.port or (5986 if parts.scheme == "https" else 5985)
        except ValueError:
            self.add((*p, "uri"), "the port is not a number between 1 and 65535")
            return None
        if not parts.hostname:
            self.add((*p, "uri"), "no host name; write it like https://hv01.example.com:5986/wsman")
            return None
        scheme: Literal["http", "https"] = "https" if parts.scheme == "https" else "http"
        # WinRM message encryption over http exists for NTLM, Kerberos and CredSSP (pypsrp encryption=auto);
        # Basic and certificate auth have none, and a default listener refuses them on http.
        if scheme == "http" and host.auth not in ("ntlm", "kerberos", "credssp"):
            self.add((*p, "auth"), f"auth {host.auth} over http would expose credentials or traffic; only ntlm, "
                     "kerberos and credssp encrypt messages on http. Use https (port 5986)")
            ok = False
        if host.auth == "certificate" and host.certificate is None:
            self.add((*p, "certificate"), "auth: certificate needs certificate: {cert_path, key_path}")
            ok = False
        if host.certificate is not None and host.auth != "certificate":
            self.add((*p, "certificate"), f"a client certificate is only used with auth: certificate, "
                     f"not {host.auth}")
            ok = False
        if host.auth in ("ntlm", "credssp", "basic") and not host.username:
            self.add((*p, "username"), f"auth {host.auth} needs a username (e.g. LAB\\admin)")
            ok = False
        if host.password_env and host.password_from:
            self.add((*p, "password_from"), "give either password_env or password_from, not both")
            ok = False
        if not host.verify and host.ca_path:
            self.add((*p, "ca_path"), "ca_path has no effect with verify: false; remove one of them")
            ok = False
        if not ok:
            return None
        if host.password_env:
            pw = SecretSource(kind="env", name=host.password_env)
        elif host.password_from:
            pw = SecretSource(kind=host.password_from)
        elif host.auth in ("certificate", "kerberos"):
            pw = SecretSource(kind="none")  # kerberos may use the ticket cache
        else:
            pw = SecretSource(kind="prompt")
        path = parts.path or "/wsman"
        return ResolvedRemoteHost(
            uri=f"{scheme}://{parts.hostname}:{port}{path}", hostname=parts.hostname, port=port, scheme=scheme,
            auth=host.auth, username=host.username, password=pw, verify=host.verify, ca_path=host.ca_path,
            fingerprint=host.fingerprint.upper().replace("SHA256", "sha256") if host.fingerprint else None,
            cert_path=host.certificate.cert_path if host.certificate else None,
            key_path=host.certificate.key_path if host.certificate else None)

    def _oop_host(self, host: RemoteHost, p: PathT) -> ResolvedRemoteHost | None:
        """``uri: local`` and ``uri: ssh://user@host[:port]``: PowerShell's out-of-process server, no WinRM."""
        local = host.uri.strip().lower() == "local"
        kind = "local" if local else "ssh"
        ok = True
        winrm_only = ["auth", "verify", "ca_path", "fingerprint", "certificate"]
        if local:
            winrm_only += ["username", "password_env", "password_from", "key_file", "host_key_fingerprint",
                           "known_hosts"]
        for name in winrm_only:
            if name in host.model_fields_set:
                hint = "; pin the SSH host key with host_key_fingerprint: SHA256:..." if name == "fingerprint" \
                    and not local else ""
                self.add((*p, name), f"{name} has no effect with uri: {kind}{hint}")
                ok = False
        if local:
            if not ok:
                return None
            return ResolvedRemoteHost(uri="local", hostname="localhost", port=0, scheme="local", auth=host.auth,
                                      username=None, password=SecretSource(kind="none"), verify=True, ca_path=None,
                                      fingerprint=None, cert_path=None, key_path=None)
        parts = urlsplit(host.uri)
        try:
            port = parts.port or 22
        except ValueError:
            self.add((*p, "uri"), "the port is not a number between 1 and 65535")
            return None
        if not parts.hostname:
            self.add((*p, "uri"), "no host name; write it like ssh://admin@hv01.example.com:22")
            return None
        if parts.path not in ("", "/") or parts.query or parts.password:
            self.add((*p, "uri"), "write it like ssh://admin@hv01.example.com:22 (no path, query or password)")
            return None
        username = parts.username or host.username
        if parts.username and host.username and parts.username != host.username:
            self.add((*p, "username"), f"the uri names user {parts.username!r}, username says {host.username!r}")
            ok = False
        if not username:
            self.add((*p, "uri"), "no user; write it like ssh://admin@hv01.example.com")
            ok = False
        if host.host_key_fingerprint and host.known_hosts:
            self.add((*p, "known_hosts"), "give either host_key_fingerprint or known_hosts, not both")
            ok = False
        if host.password_env and host.password_from:
            self.add((*p, "password_from"), "give either password_env or password_from, not both")
            ok = False
        if not ok:
            return None
        # Password authentication only when the lab file asks for it (password_env / password_from).
        if host.password_env:
            pw = SecretSource(kind="env", name=host.password_env)
        elif host.password_from:
            pw = SecretSource(kind=host.password_from)
        else:
            pw = SecretSource(kind="none")
        return ResolvedRemoteHost(
            uri=f"ssh://{username}@{parts.hostname}:{port}", hostname=parts.hostname, port=port, scheme="ssh",
            auth=host.auth, username=username, password=pw, verify=True, ca_path=None, fingerprint=None,
            cert_path=None, key_path=None, key_file=host.key_file, host_key_fingerprint=host.host_key_fingerprint,
            known_hosts=host.known_hosts)

    def _guest_password(self, host: RemoteHost | str | None, env: str | None, frm: str | None
                        ) -> SecretSource | None:
        if env and frm:
            self.add(("guest_password_from",), "give either guest_password_env or guest_password_from, not both")
            return None
        if env:
            # On the simulator an unset variable falls back to the generated password, so the quickstart
            # runs without any setup; on a real host it is an error (see labctl.lab.secrets).
            return SecretSource(kind="env", name=env, fallback=None if isinstance(host, RemoteHost) else "generated")
        if frm:
            return SecretSource(kind="keyring" if frm == "keyring" else "prompt")
        if isinstance(host, RemoteHost):
            self.add(("guest_password_env",), "a real host needs the guests' Administrator password source: "
                     "guest_password_env: LABCTL_GUEST_PASSWORD (or guest_password_from: keyring | prompt); "
                     "a generated password is only kept for host: sim")
            return None
        return SecretSource(kind="generated")


class _AddressPool:
    """Free addresses of the subnet in ascending order, skipping network, broadcast, gateway and used ones."""

    def __init__(self, net: _Net, used: set[ipaddress.IPv4Address]):
        self._hosts = net.net.hosts()
        self._skip = {net.gateway, *used}

    def next(self) -> ipaddress.IPv4Address | None:
        for ip in self._hosts:
            if ip not in self._skip:
                self._skip.add(ip)
                return ip
        return None


def _partial_settings(raw: Any) -> VmSettings:
    model, _ = partial_validate(VmSettings, raw)
    return model if isinstance(model, VmSettings) else VmSettings()


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``over`` on top of ``base``; nested mappings merge key by key, anything else replaces."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out
