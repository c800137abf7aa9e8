"""The lab file as pydantic models (what a user writes), and the fully resolved lab (what the engine uses).

Models check shapes and single values (types, ranges, formats). Rules that span fields or VMs (IP in subnet,
duplicate names, memory for nested virtualization, images in the catalog) live in ``validate.py`` so that
every problem is reported with its line, all at once. See docs/lab-file.md for the format.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
)

from labctl.lab.sizes import SIZE_PATTERN, format_size, parse_size

# --- value types --------------------------------------------------------------------------------------

Size = Annotated[
    int,
    BeforeValidator(parse_size),
    WithJsonSchema({"type": "string", "pattern": SIZE_PATTERN, "examples": ["4GiB", "4096MiB", "60GB"],
                    "description": "A size with a unit; GB = GiB as in PowerShell"}),
]


def _ipv4(value: str) -> str:
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IPv4 address") from None


def _ipv4_network(value: str) -> str:
    if "/" not in value:
        raise ValueError(f"{value!r} has no prefix length; write it like {value}/24")
    try:
        return str(ipaddress.IPv4Network(value, strict=True))
    except ValueError as exc:
        try:
            loose = ipaddress.IPv4Network(value, strict=False)
        except ValueError:
            raise ValueError(f"{value!r} is not an IPv4 subnet like 10.10.0.0/24") from None
        raise ValueError(f"{value!r} has host bits set; did you mean {loose}?") from exc


IPv4 = Annotated[str, AfterValidator(_ipv4), Field(json_schema_extra={"format": "ipv4"})]
IPv4Net = Annotated[str, AfterValidator(_ipv4_network), Field(json_schema_extra={"examples": ["10.10.0.0/24"]})]

LAB_NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9-]{0,19}$"
LabName = Annotated[str, Field(pattern=LAB_NAME_RE, description="Letters, digits and dashes; at most 20")]
# A VM name may carry one {n} / {n:02d} placeholder; the final names are checked after expansion.
VmNamePattern = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9{}:_.-]+$")]
GroupName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")]
EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
                               description="Name of an environment variable holding the secret")]
TemplateName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                                    description="templates/unattend/<name>.xml.j2")]
ImageId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]*$")]
SwitchName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")]
Fingerprint = Annotated[str, Field(
    pattern=r"^(sha256|SHA256):([0-9A-Fa-f]{2}:?){31}[0-9A-Fa-f]{2}$",
    description="Pinned server certificate: sha256:AB:CD:... (32 bytes)")]
SshFingerprint = Annotated[str, Field(
    pattern=r"^SHA256:[A-Za-z0-9+/]{43}=?$",
    description="Pinned SSH host key, as ssh-keygen -lf prints it: SHA256:<base64>")]
SecretFrom = Literal["keyring", "prompt"]
Role = Literal["container-host"]
Isolation = Literal["process", "hyperv"]
ContainerImage = Literal["nanoserver", "servercore"]
# Microsoft's base images: the tag (ltsc2019/2022/2025) comes from the VM image's container_tag, so a guest
# always gets the image of its own build (process isolation needs container build == host build).
CONTAINER_REGISTRY = "mcr.microsoft.com/windows"
DEFAULT_DOCKER_VERSION = "27.3.1"
DOCKER_URL_TEMPLATE = "https://download.docker.com/win/static/stable/x86_64/docker-{version}.zip"
AuthKind = Literal["ntlm", "kerberos", "credssp", "certificate", "basic"]

# Windows' container NAT (HNS "nat" network) picks its subnet inside 172.16.0.0/12 by default.
DEFAULT_CONTAINER_NAT = "172.16.0.0/12"
# The /16 inside container_nat that daemon.json's fixed-cidr pins the guests' "nat" network to (when it lies
# inside container_nat; otherwise the first /16 of container_nat, or container_nat itself when smaller).
DEFAULT_CONTAINER_CIDR = "172.20.0.0/16"
# The Hyper-V host is not a DNS server, so pointing guests at the gateway would leave them without name
# resolution; public resolvers work through NetNat. Corporate networks set `dns:` explicitly.
DEFAULT_DNS: tuple[str, ...] = ("1.1.1.1", "8.8.8.8")
NESTED_MIN_MEMORY = 4 * 1024**3
MAX_COPIES = 99
# s01-node1: the copy first, so a copy's VMs sort together in Hyper-V Manager.
DEFAULT_COPY_NAMES = "s{copy:02d}-{name}"
MAX_PROCESSORS = 64


class _Model(BaseModel):
    # strict: YAML already gives typed values, so "2" for processors is a mistake worth reporting.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# --- host --------------------------------------------------------------------------------------------


class CertificateSpec(_Model):
    """Client certificate for auth: certificate."""

    cert_path: str = Field(min_length=1)
    key_path: str = Field(min_length=1)


class RemoteHost(_Model):
    """A real Hyper-V host reached over WinRM, SSH or locally. Never holds a password, only where to get one."""

    uri: str = Field(min_length=1, description="https://host:5986/wsman, a host name, ssh://user@host[:port] "
                     "(PowerShell over SSH) or local (labctl runs on the Hyper-V host)")
    auth: AuthKind = "ntlm"
    username: str | None = None
    password_env: EnvName | None = None
    password_from: SecretFrom | None = None
    verify: bool = True
    ca_path: str | None = None
    fingerprint: Fingerprint | None = None
    certificate: CertificateSpec | None = None
    key_file: str | None = Field(default=None, description="SSH: the private key; default: the ssh-agent's keys")
    host_key_fingerprint: SshFingerprint | None = Field(
        default=None, description="SSH: the host key pinned (SHA256:...); otherwise known_hosts is checked")
    known_hosts: str | None = Field(default=None, description="SSH: known_hosts file; default ~/.ssh/known_hosts")


def _host_kind(value: Any) -> str | None:
    if isinstance(value, str):
        return "sim"
    if isinstance(value, dict | RemoteHost):
        return "remote"
    return None


HostField = Annotated[
    Annotated[Literal["sim"], Tag("sim")] | Annotated[RemoteHost, Tag("remote")],
    Discriminator(_host_kind, custom_error_type="host_kind",
                  custom_error_message="must be \"sim\" or a mapping with uri, auth, username, ..."),
]


# --- network and VMs ---------------------------------------------------------------------------------


class NetworkSpec(_Model):
    """The lab's Internal switch, its subnet and NAT."""

    switch: SwitchName | None = Field(default=None, description="Default: labctl-<lab name>")
    subnet: IPv4Net
    gateway: IPv4 | None = Field(default=None, description="Host vNIC address; default: first host address")
    nat: bool = True
    dns: list[IPv4] | None = Field(default=None, description="Default: 1.1.1.1, 8.8.8.8")
    container_nat: IPv4Net = Field(
        default=DEFAULT_CONTAINER_NAT,
        description="Range the container NAT inside each guest uses; the lab subnet must stay out of it")
    copy_pool: IPv4Net | None = Field(
        default=None, examples=["10.50.0.0/16"],
        description="With copies: the range every copy's subnet is carved from (subnets of network.subnet's size, "
                    "in order); one NetNat covers it on each host")


class VmSettings(_Model):
    """Settings any VM may have; used by `defaults`, `groups` and each VM (vm > group > defaults)."""

    image: ImageId | None = None
    processors: int | None = Field(default=None, ge=1, le=MAX_PROCESSORS)
    memory: Size | None = None
    disk: Size | None = None
    unattend: TemplateName | None = None
    vars: dict[str, Any] | None = Field(default=None, description="Template variables; deep-merged")
    roles: list[Role] | None = None
    nested: bool | None = Field(default=None, description="Expose virtualization extensions; default true")
    isolation: Isolation | None = Field(default=None, description="Default container isolation; default process")
    container_images: list[ContainerImage] | None = Field(
        default=None, min_length=1,
        description="Base images every container host gets (tag from the VM image's container_tag); "
                    "default [nanoserver]")
    docker_tls: bool | None = Field(
        default=None, description="Docker API over TLS on tcp 2376, published on the host; default false")


class VmEntry(VmSettings):
    """One entry of `vms`: a VM, or `count` replicas named by a pattern like "node{n:02d}"."""

    name: VmNamePattern
    count: int | None = Field(default=None, ge=1, le=999)
    start: int = Field(default=1, ge=0, description="First value of {n}")
    group: GroupName | None = None
    ip: IPv4 | None = Field(default=None, description="Static address; replicas take the following ones")


Sha256Hex = Annotated[str, Field(pattern=r"^[0-9A-Fa-f]{64}$", description="SHA-256 as 64 hex digits")]


class DockerSpec(_Model):
    """Where the container hosts' Docker comes from: Docker's static zip (the same for every guest)."""

    version: str = Field(default=DEFAULT_DOCKER_VERSION, pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$",
                         description="Docker's version as x.y.z, e.g. " + DEFAULT_DOCKER_VERSION)
    url: str | None = Field(default=None, pattern=r"^https?://\S+$",
                            description="An http(s) URL of the zip; default: " + DOCKER_URL_TEMPLATE)
    path: str | None = Field(default=None, min_length=1,
                             description="A local copy of the zip (relative to the lab file); instead of url")
    sha256: Sha256Hex | None = Field(
        default=None, description="the zip's SHA-256 as 64 hex digits; required for a real host unless path is given")


class LabFile(_Model):
    """A lab file (labs/<lab>.yaml)."""

    model_config = ConfigDict(title="labctl lab file")

    name: LabName
    host: HostField = "sim"
    network: NetworkSpec
    defaults: VmSettings = VmSettings()
    groups: dict[GroupName, VmSettings] = Field(default_factory=dict)
    vms: list[VmEntry] = Field(min_length=1)
    docker: DockerSpec = DockerSpec()
    guest_password_env: EnvName | None = None
    guest_password_from: SecretFrom | None = None
    copies: int | None = Field(default=None, ge=1, le=MAX_COPIES,
                               description="Make N complete, isolated copies of the lab (one per student)")
    copy_names: str = Field(
        default=DEFAULT_COPY_NAMES, min_length=1, max_length=64,
        description="VM names of a copy: {name} is the VM's name in the file, {copy} (or {copy:02d}) the copy number")
    copy_passwords: Literal["per-copy", "shared"] = Field(
        default="per-copy", description="per-copy: each copy's guests get their own password, derived from the "
                                        "guest password source; shared: every copy uses that password itself")
    hosts: list[HostField] | None = Field(
        default=None, min_length=1, description="A pool of hosts the copies are spread over (instead of host)")
    rdp: bool = Field(default=False, description="Publish every VM's RDP on its host's external address (NetNat)")


BUILTIN_DEFAULTS: dict[str, Any] = {
    "image": "ws2022-core",
    "processors": 2,
    "memory": 4 * 1024**3,
    "disk": 60 * 1024**3,
    "unattend": "default",
    "vars": {"timezone": "UTC", "locale": "en-US"},
    "roles": ["container-host"],
    "nested": True,
    "isolation": "process",
    "container_images": ["nanoserver"],
    "docker_tls": False,
}


# --- image catalog entry -----------------------------------------------------------------------------

HostPath = Annotated[str, Field(pattern=r"^([A-Za-z]:\\|\\\\).+$",
                                description=r"A path on the host: C:\ISO\x.iso or \\server\share\x.iso")]
HostIsoPath = Annotated[str, Field(pattern=r"^([A-Za-z]:\\|\\\\).+\.[Ii][Ss][Oo]$",
                                   description=r"An ISO on the host: C:\ISO\SERVER_EVAL_x64FRE_en-us.iso")]
FeatureName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
                                   description="A Windows optional feature name as DISM knows it (Containers)")]
DEFAULT_IMAGE_DISK = 60 * 1024**3


class GoldenBootstrap(_Model):
    """What a golden image bakes in: the container-host bootstrap labctl runs in guests."""

    features: list[FeatureName] = Field(default_factory=lambda: ["Containers", "Hyper-V"])
    docker: bool = True
    container_images: list[ContainerImage] = Field(default_factory=lambda: list[ContainerImage](["nanoserver"]))


class ImageRecipe(_Model):
    """How labctl builds an image (``build:`` of images/<id>.yaml): from an ISO, or a golden image ``from:`` another.

    Which combinations are allowed is checked in labctl.lab.images (every problem with its line)."""

    model_config = ConfigDict(populate_by_name=True)

    iso: HostIsoPath | None = Field(default=None, description=r"An ISO on the host, like C:\ISO\x.iso")
    iso_file: str | None = Field(default=None, min_length=1,
                                 description="A local ISO (relative to the image file), uploaded once to the host")
    sha256: Sha256Hex | None = Field(default=None, description="The ISO's SHA-256; required with iso_file")
    edition: str | None = Field(default=None, min_length=1,
                                description="The image name in install.wim/esd, e.g. Windows Server 2022 "
                                            "Datacenter Evaluation")
    index: int | None = Field(default=None, ge=1, description="The image index in install.wim/esd")
    disk_size: Size = DEFAULT_IMAGE_DISK
    features: list[FeatureName] = Field(default_factory=list, description="Enabled offline (DISM)")
    updates: HostPath | None = Field(default=None, description=r"A host folder (C:\Updates) of .msu/.cab files, "
                                                               "applied in name order")
    from_: ImageId | None = Field(default=None, alias="from", description="A golden image: the image it starts from")
    bootstrap: GoldenBootstrap | None = None

    @property
    def golden(self) -> bool:
        """Whether this recipe makes a golden image (from another image) rather than one from an ISO."""
        return self.from_ is not None


class ImageEntry(_Model):
    """One base image (images/<id>.yaml). ``build: 20348`` (an int) in older files is read as ``os_build``
    by labctl.lab.images; ``build:`` as a mapping is the recipe."""

    id: ImageId
    display_name: str = Field(min_length=1)
    os_build: int = Field(ge=10000, description="The Windows build, e.g. 20348")
    generation: Literal[2] = 2
    base_disk: str = Field(pattern=r"^([A-Za-z]:\\|\\\\).+\.vhdx?$",
                           description=r"Path on the host: C:\LabBases\WS2022-Core.vhdx or \\server\share\x.vhdx")
    container_tag: str = Field(pattern=r"^ltsc[0-9]{4}$")
    min_memory: Size
    min_disk: Size = 32 * 1024**3
    build: ImageRecipe | None = Field(default=None, description="How labctl builds the image when it is missing")


# --- resolved lab ------------------------------------------------------------------------------------


class _Resolved(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SecretSource(_Resolved):
    """Where a secret comes from: an env var, the keyring, a prompt, or (simulator only) generated."""

    kind: Literal["env", "keyring", "prompt", "generated", "none"]
    name: str | None = None
    fallback: Literal["generated"] | None = Field(
        default=None, description="Used when an env source's variable is unset (host: sim only)")


class ResolvedSimHost(_Resolved):
    """The embedded simulator; its state lives in ``state_dir``."""

    kind: Literal["sim"] = "sim"
    state_dir: str


class ResolvedRemoteHost(_Resolved):
    """A real host with a normalized endpoint."""

    kind: Literal["remote"] = "remote"
    uri: str
    hostname: str
    port: int
    scheme: Literal["http", "https", "ssh", "local"]
    auth: AuthKind
    username: str | None
    password: SecretSource
    verify: bool
    ca_path: str | None
    fingerprint: str | None
    cert_path: str | None
    key_path: str | None
    key_file: str | None = None  # ssh: the private key (None: the ssh-agent)
    host_key_fingerprint: str | None = None  # ssh: "SHA256:..."
    known_hosts: str | None = None  # ssh: None means ~/.ssh/known_hosts (when no fingerprint is pinned)


class ResolvedNetwork(_Resolved):
    """The lab network with every default filled in."""

    switch: str
    subnet: str
    prefix_length: int
    gateway: str
    nat: bool
    nat_name: str
    dns: list[str]
    container_nat: str
    container_cidr: str = Field(description="daemon.json fixed-cidr: the guests' container NAT (a /16)")
    nat_prefix: str = Field(default="", description="The NetNat's internal prefix: the subnet, or a class's "
                                                    "copy pool (one NAT for every copy on a host)")


class ResolvedDocker(_Resolved):
    """Docker's static zip: version and where it comes from (url, or a local path), and its SHA-256."""

    version: str
    url: str
    path: str | None
    sha256: str | None


class ResolvedVm(_Resolved):
    """One VM, fully resolved and typed: what the engine creates and what templates render."""

    name: str
    image: ImageEntry
    processors: int
    memory_bytes: int
    disk_bytes: int
    ip: str
    prefix_length: int
    gateway: str
    dns: list[str]
    mac: str = Field(description="00-15-5D-XX-XX-XX, as unattend's Identifier wants it")
    template: str
    vars: dict[str, Any]
    roles: list[str]
    nested: bool
    isolation: Isolation
    group: str | None
    container_images: list[str] = Field(default_factory=list)
    docker_tls: bool = False
    index: int = Field(default=0, description="Position in the lab (0-based); picks the VM's host ports")
    copy_number: int | None = Field(default=None, description="The copy this VM belongs to (labs with copies)")
    base_name: str = Field(default="", description="The VM's name in the lab file, before the copy pattern")

    @property
    def container_host(self) -> bool:
        """Whether labctl makes this VM a Windows container host."""
        return "container-host" in self.roles

    @property
    def container_image_refs(self) -> list[str]:
        """The base image references this VM gets, e.g. mcr.microsoft.com/windows/nanoserver:ltsc2022."""
        return [container_image_ref(kind, self.image.container_tag) for kind in self.container_images]

    @property
    def memory(self) -> str:
        """Memory for display ("4GiB")."""
        return format_size(self.memory_bytes)


class ResolvedLab(_Resolved):
    """The whole lab, resolved: deterministic for a given file and catalog."""

    name: str
    source: str
    lab_dir: str
    state_dir: str
    host: ResolvedSimHost | ResolvedRemoteHost
    network: ResolvedNetwork
    vms: list[ResolvedVm]
    docker: ResolvedDocker
    guest_password: SecretSource
    template_dirs: list[str]
    # Labs with copies: the class lists every copy's VMs in ``vms`` and each copy as a unit (a lab of its own
    # with its own switch, subnet, journal and lab id); a unit has ``copy_number`` set and no units.
    copy_number: int | None = None
    units: list[ResolvedLab] = Field(default_factory=list)
    hosts: list[ResolvedSimHost | ResolvedRemoteHost] = Field(default_factory=list)
    host_keys: list[str] = Field(default_factory=list, description="A stable name for each of hosts")
    copy_passwords: Literal["per-copy", "shared"] = "per-copy"
    rdp: bool = False
    class_state_dir: str = Field(default="", description="The class's own state (placement, guest password)")

    @property
    def is_class(self) -> bool:
        """Whether the lab file has copies (this object is the whole class, not one copy)."""
        return bool(self.units)

    def unit(self, copy: int) -> ResolvedLab:
        """Copy ``copy`` (1-based) of a class."""
        for u in self.units:
            if u.copy_number == copy:
                return u
        raise KeyError(copy)

    def vm(self, name: str) -> ResolvedVm:
        """The VM called ``name`` (case-insensitive, as Windows names are)."""
        for vm in self.vms:
            if vm.name.lower() == name.lower():
                return vm
        raise KeyError(name)


# "{n}" or "{n:0Wd}" (zero-padded to W digits): the only placeholder a VM name pattern may hold.
NAME_PLACEHOLDER_RE = re.compile(r"\{n(?::0([1-9])d)?\}")


def container_image_ref(kind: str, tag: str) -> str:
    """``nanoserver``, ``ltsc2022`` -> ``mcr.microsoft.com/windows/nanoserver:ltsc2022``."""
    return f"{CONTAINER_REGISTRY}/{kind}:{tag}"


def container_cidr(container_nat: str) -> str:
    """The /16 the guests' container NAT uses (daemon.json fixed-cidr), inside ``container_nat``."""
    nat = ipaddress.IPv4Network(container_nat)
    default = ipaddress.IPv4Network(DEFAULT_CONTAINER_CIDR)
    if default.subnet_of(nat):
        return str(default)
    if nat.prefixlen >= 16:
        return str(nat)
    return str(next(nat.subnets(new_prefix=16)))
