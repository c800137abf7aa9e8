"""The simulated container registry: mcr.microsoft.com's Windows base images and Docker Hub search.

Windows base images are published per Windows release. Each tag's manifest list names the
``os.version`` of each entry; dockerd on Windows only accepts an entry whose build is not newer
than the host's, so pulling an image newer than the guest fails with "no matching manifest"
(the base images have no ``latest`` tag: "manifest unknown"). An image built on a base image (IIS on
Server Core) shares the base's layers: pulling it where the base is present downloads only its own
layers. Pulls are counted (``registry:pulls:<repo>:<tag>`` and ``registry:bytes``) so a test can prove a
lab downloads each base image once. References are parsed with the docker client's grammar
(distribution/reference), so a malformed one is refused before anything is pulled.

Sizes are what ``docker images`` reports after extraction (docs/facts.md "Version
compatibility": nanoserver:ltsc2022 ~297 MB, servercore:ltsc2022 3.1-3.9 GB, servercore:ltsc2019
4.84 GB; the others are estimates). Revisions (UBR) are fixed, illustrative patch levels.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hvsim.core.counters import Counters

MB = 1000**2  # docker reports sizes in decimal units
MCR = "mcr.microsoft.com"
NANOSERVER = f"{MCR}/windows/nanoserver"
SERVERCORE = f"{MCR}/windows/servercore"
# IIS on Server Core (Microsoft's image, built FROM servercore of each release).
IIS = f"{MCR}/windows/servercore/iis"

# Windows release tag -> full os.version of the published image (illustrative patch level).
RELEASES: dict[str, str] = {
    "ltsc2019": "10.0.17763.6532",
    "1809": "10.0.17763.6532",
    "ltsc2022": "10.0.20348.2849",
    "ltsc2025": "10.0.26100.2314",
}
# os build -> the revision (UBR) a guest of that build runs at: patched to the same month as the images.
GUEST_REVISIONS: dict[int, int] = {17763: 6532, 20348: 2849, 26100: 2314, 14393: 7515}

# (repo, os build) -> size in bytes.
_SIZES: dict[tuple[str, int], int] = {
    (NANOSERVER, 17763): 258 * MB,  # estimate
    (NANOSERVER, 20348): 297 * MB,  # docs/facts.md
    (NANOSERVER, 26100): 1150 * MB,  # estimate: the 2025 Nano Server image grew (unconfirmed)
    (SERVERCORE, 17763): 4840 * MB,  # docs/facts.md
    (SERVERCORE, 20348): 3910 * MB,  # docs/facts.md (upper figure)
    (SERVERCORE, 26100): 5290 * MB,  # estimate
}
# Publication dates of the modeled images (the "CREATED" column).
_CREATED: dict[int, str] = {17763: "2024-11-07T18:23:45Z", 20348: "2024-11-07T18:40:12Z",
                            26100: "2024-11-07T19:02:51Z"}
_DESCRIPTIONS = {NANOSERVER: "Nano Server base OS container image",
                 SERVERCORE: "Windows Server Core base OS container image",
                 IIS: "Internet Information Services (IIS) on Windows Server Core"}
# Images built on another published image: repo -> (base repo, bytes its own layers add, layer count).
# IIS adds the Web-Server role and ServiceMonitor.exe: ~0.2 GB over Server Core (estimate).
_DERIVED: dict[str, tuple[str, int, int]] = {IIS: (SERVERCORE, 205 * MB, 2)}
# Image configuration (docker image inspect .Config): the base images start cmd.exe; IIS runs
# ServiceMonitor.exe watching the w3svc service (its Dockerfile's ENTRYPOINT) and exposes port 80.
_CONFIGS: dict[str, dict[str, Any]] = {
    NANOSERVER: {"Cmd": ["c:\\windows\\system32\\cmd.exe"], "Entrypoint": None, "User": "ContainerUser"},
    SERVERCORE: {"Cmd": ["c:\\windows\\system32\\cmd.exe"], "Entrypoint": None, "User": ""},
    IIS: {"Cmd": None, "Entrypoint": ["C:\\ServiceMonitor.exe", "w3svc"], "User": "", "ExposedPorts": ["80/tcp"]},
}
# Tags of the derived repositories: tag -> the Windows builds its manifest list has entries for. The
# IIS image is tagged per release (windowsservercore-ltsc20xx); its ``latest`` lists every release.
_DERIVED_TAGS: dict[str, dict[str, tuple[int, ...]]] = {
    IIS: {"windowsservercore-ltsc2019": (17763,), "windowsservercore-ltsc2022": (20348,),
          "windowsservercore-ltsc2025": (26100,), "latest": (26100, 20348, 17763)},
}
_VERSIONS_BY_BUILD = {int(v.split(".")[2]): v for v in RELEASES.values()}
# The derived images are rebuilt a few days after their base (publication dates, illustrative).
_DERIVED_CREATED: dict[int, str] = {17763: "2024-11-12T20:05:10Z", 20348: "2024-11-12T20:11:47Z",
                                    26100: "2024-11-12T20:19:02Z"}


class RegistryError(Exception):
    """A pull the registry (or dockerd's manifest-list filter) refuses; ``text`` is docker's message."""

    def __init__(self, text: str, *, before_stream: bool) -> None:
        super().__init__(text)
        self.text = text
        # True: dockerd answers the API call with an error ("Error response from daemon: ...");
        # False: the pull had begun streaming progress, the error arrives in the stream.
        self.before_stream = before_stream


@dataclass(frozen=True)
class ImageManifest:
    """One pullable image: where it comes from and what it is."""

    repo: str
    tag: str
    os_version: str
    size: int
    created: str
    # (layer digest, bytes) from the bottom layer up; a derived image starts with its base's layers.
    layers: tuple[tuple[str, int], ...] = ()
    config: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def os_build(self) -> int:
        return int(self.os_version.split(".")[2])

    @property
    def ref(self) -> str:
        return f"{self.repo}:{self.tag}"

    @property
    def digest(self) -> str:
        """The manifest list's digest: stable, derived from the name (a modeled value)."""
        return "sha256:" + hashlib.sha256(self.ref.encode("utf-8")).hexdigest()

    @property
    def image_id(self) -> str:
        """The image (config) id: the same for every tag of the same build (1809 == ltsc2019, IIS latest ==
        windowsservercore-ltsc2022 on a 2022 host)."""
        return "sha256:" + hashlib.sha256(f"{self.repo}@{self.os_version}".encode()).hexdigest()


def _layer(repo: str, os_version: str, index: int) -> str:
    return hashlib.sha256(f"{repo}@{os_version}#{index}".encode()).hexdigest()


def _base_layers(repo: str, os_version: str, size: int) -> tuple[tuple[str, int], ...]:
    """Nano Server is one layer; Server Core a base layer and an update layer (an eighth of it, estimate)."""
    if repo == SERVERCORE:
        update = size // 8
        return ((_layer(repo, os_version, 0), size - update), (_layer(repo, os_version, 1), update))
    return ((_layer(repo, os_version, 0), size),)


def _manifest(repo: str, tag: str, build: int) -> ImageManifest | None:
    """The image of ``repo`` for Windows build ``build`` (tagged ``tag``), or None when none is published."""
    version = _VERSIONS_BY_BUILD.get(build)
    if version is None:
        return None
    if repo in _DERIVED:
        base_repo, extra, count = _DERIVED[repo]
        base = _manifest(base_repo, tag, build)
        if base is None:
            return None
        own = tuple((_layer(repo, version, i), extra // count) for i in range(count))
        return ImageManifest(repo, tag, version, base.size + extra, _DERIVED_CREATED[build], base.layers + own,
                             dict(_CONFIGS[repo]))
    size = _SIZES[(repo, build)]
    return ImageManifest(repo, tag, version, size, _CREATED[build], _base_layers(repo, version, size),
                         dict(_CONFIGS[repo]))


def manifest_list(repo: str, tag: str) -> list[ImageManifest] | None:
    """The entries of ``repo:tag``'s manifest list (one per Windows build), or None: no such tag."""
    if repo not in _DESCRIPTIONS:
        return None
    if repo in _DERIVED_TAGS:
        builds = _DERIVED_TAGS[repo].get(tag)
        if builds is None:
            return None
    else:
        # MCR also tags each image with its full build ("10.0.20348.2849").
        version = RELEASES.get(tag) or (tag if tag in RELEASES.values() else None)
        if version is None:
            return None
        builds = (int(version.split(".")[2]),)
    entries = [_manifest(repo, tag, b) for b in builds]
    return [m for m in entries if m is not None]


def split_reference(ref: str) -> tuple[str, str]:
    """"mcr.microsoft.com/windows/nanoserver:ltsc2022" -> (repo, tag); no tag means "latest".

    A name without a registry host is a Docker Hub name (``docker.io/library/<name>``); digests
    (``@sha256:``) are kept as the tag part.
    """
    ref = ref.strip()
    if "@" in ref:
        repo, _, digest = ref.partition("@")
        return normalize_repo(repo), "@" + digest
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        repo, _, tag = ref.rpartition(":")
    else:
        repo, tag = ref, "latest"
    return normalize_repo(repo), tag


def normalize_repo(repo: str) -> str:
    """Docker's normalization: lower-case; Hub names get docker.io/library/."""
    repo = repo.lower()
    first = repo.split("/", 1)[0]
    if "/" not in repo:
        return f"docker.io/library/{repo}"
    if "." not in first and ":" not in first and first != "localhost":
        return f"docker.io/{repo}"
    return repo


# The docker client's reference grammar (github.com/distribution/reference regexp.go, vendored by docker/cli
# 27.x): Go's \w is ASCII, so a typographic dash ("\u2013rm" pasted from a web page) is not a name.
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[(?:[a-fA-F0-9:]+)\])(?::[0-9]+)?"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_NAME = rf"(?:{_DOMAIN}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*[:][0-9a-fA-F]{32,}"
_REFERENCE = re.compile(rf"^({_NAME})(?::({_TAG}))?(?:@({_DIGEST}))?$", re.ASCII)
_IDENTIFIER = re.compile(r"^[a-f0-9]{64}$")
REPOSITORY_NAME_MAX = 255


class ReferenceError(Exception):
    """A reference the docker client (or dockerd) refuses to parse; ``text`` is the error as Go prints it."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def parse_reference(ref: str, release: tuple[int, int] = (99, 0)) -> tuple[str, str | None, str | None]:
    """reference.ParseAnyReference/ParseNormalizedNamed: (normalized repository, tag or None, digest or None).

    A 64-hex string is an image id (repository ""); the errors are the library's own texts (normalize.go,
    reference.go): "invalid reference format", "... repository name (x) must be lowercase" (the name in
    parentheses since docker 25, github.com/distribution/reference; ``release`` is the client's (major, minor)).
    """
    if _IDENTIFIER.match(ref):
        return "", None, "sha256:" + ref
    if re.match(r"^sha256:[a-f0-9]{64}$", ref):
        return "", None, ref
    first, slash, rest = ref.partition("/")
    if not slash:
        domain, remainder = "docker.io", "library/" + ref
    elif first == "localhost" or any(ch in first for ch in ".:") or first.lower() != first:
        domain, remainder = ("docker.io" if first == "index.docker.io" else first), rest
    else:
        domain, remainder = "docker.io", ref
    if domain == "docker.io" and "/" not in remainder:
        remainder = "library/" + remainder
    remote = remainder.split(":", 1)[0]
    if remote.lower() != remote:
        if release < (25, 0):
            raise ReferenceError("invalid reference format: repository name must be lowercase")
        raise ReferenceError(f"invalid reference format: repository name ({remote}) must be lowercase")
    full = f"{domain}/{remainder}"
    m = _REFERENCE.match(full)
    if m is None:
        if not full:
            raise ReferenceError("repository name must have at least one component")
        if _REFERENCE.match(full.lower()):
            raise ReferenceError("repository name must be lowercase")
        raise ReferenceError("invalid reference format")
    name, tag, digest = m.group(1), m.group(2), m.group(3)
    if len(name.split("/", 1)[-1]) > REPOSITORY_NAME_MAX:
        raise ReferenceError(f"repository name must not be more than {REPOSITORY_NAME_MAX} characters")
    return name, tag, digest


def familiar(repo: str) -> str:
    """How docker shows a repo name: Hub names lose docker.io/ and library/."""
    if repo.startswith("docker.io/library/"):
        return repo[len("docker.io/library/"):]
    if repo.startswith("docker.io/"):
        return repo[len("docker.io/"):]
    return repo


def lookup(repo: str, tag: str) -> ImageManifest | None:
    """The published image for repo:tag (the newest entry of its manifest list), or None when the registry has
    no such tag."""
    entries = manifest_list(repo, tag)
    return max(entries, key=lambda m: m.os_build) if entries else None


def resolve_pull(repo: str, tag: str, host_build: int) -> ImageManifest:
    """What ``docker pull repo:tag`` gets on a Windows host of ``host_build``, or RegistryError.

    Texts: "manifest for X not found: manifest unknown: manifest tagged by "T" is not found"
    (mcr, microsoft/Windows-Containers#447); "no matching manifest for windows/amd64 10.0.<build>
    in the manifest list entries" (docs/facts.md). dockerd filters the list (moby
    distribution/pull_v2_windows.go filterManifests): an entry newer than the host is dropped, one of the
    host's own build comes first, else the first compatible entry (the lists here are newest first).
    """
    entries = manifest_list(repo, tag)
    shown = f"{familiar(repo)}:{tag}"
    if entries is None:
        if repo.startswith(f"{MCR}/"):
            raise RegistryError(f'manifest for {shown} not found: manifest unknown: manifest tagged by "{tag}" '
                                f"is not found", before_stream=True)
        # Docker Hub answers an unknown repository with "pull access denied" (docker 20.10+ text).
        raise RegistryError(f"pull access denied for {familiar(repo)}, repository does not exist or may "
                            f"require 'docker login': denied: requested access to the resource is denied",
                            before_stream=True)
    compatible = [m for m in entries if m.os_build <= host_build]
    if not compatible:
        raise RegistryError(f"no matching manifest for windows/amd64 10.0.{host_build} in the manifest list "
                            f"entries", before_stream=False)
    exact = [m for m in compatible if m.os_build == host_build]
    return (exact or compatible)[0]


def count_pull(counters: Counters, manifest: ImageManifest, downloaded: int | None = None) -> None:
    """Account one download of ``manifest`` from the registry: ``downloaded`` bytes (all its layers unless the
    host already had some)."""
    counters.add(f"registry:pulls:{manifest.repo}:{manifest.tag}")
    counters.add("registry:bytes", manifest.size if downloaded is None else downloaded)


# Docker Hub search results (`docker search`): Hub hosts only pointer repositories for the Windows
# images (they are served by mcr.microsoft.com). Star counts are illustrative.
HUB_INDEX: list[dict[str, object]] = [
    {"name": "microsoft/windows-servercore", "description": "The official Windows Server Core base image",
     "stars": 1027, "official": False},
    {"name": "microsoft/windows-nanoserver", "description": "The official Nano Server base image",
     "stars": 502, "official": False},
    {"name": "microsoft/windows", "description": "The official Windows base image", "stars": 216,
     "official": False},
    {"name": "microsoft/windows-server", "description": "The official Windows Server base image",
     "stars": 158, "official": False},
    {"name": "microsoft/dotnet-framework", "description": "Official images for .NET Framework",
     "stars": 770, "official": False},
    {"name": "microsoft/mssql-server", "description": "Official images for Microsoft SQL Server",
     "stars": 1143, "official": False},
    {"name": "microsoft/iis", "description": "Internet Information Services (IIS) instance running in a "
     "Windows Server Core container", "stars": 255, "official": False},
    {"name": "mcr.microsoft.com", "description": "Microsoft Container Registry pointer repository",
     "stars": 3, "official": False},
]


def search(term: str, limit: int = 25) -> list[dict[str, object]]:
    """Docker Hub search: names or descriptions containing ``term`` (case-insensitive), by stars."""
    t = term.lower()
    hits = [e for e in HUB_INDEX if t in str(e["name"]).lower() or t in str(e["description"]).lower()]
    hits.sort(key=lambda e: -int(str(e["stars"])))
    return hits[:limit]
