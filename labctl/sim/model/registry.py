"""The simulated container registry: mcr.microsoft.com's Windows base images and Docker Hub search.

Windows base images are published per Windows release. Each tag's manifest list names the
``os.version`` it was built for; dockerd on Windows only accepts an entry whose build is not newer
than the host's, so pulling an image newer than the guest fails with "no matching manifest"
(there is no ``latest`` tag: "manifest unknown"). Pulls are counted (``registry:pulls:<repo>:<tag>``
and ``registry:bytes``) so a test can prove a lab downloads each base image once.

Sizes are what ``docker images`` reports after extraction (hyperv-facts.md "Version
compatibility": nanoserver:ltsc2022 ~297 MB, servercore:ltsc2022 3.1-3.9 GB, servercore:ltsc2019
4.84 GB; the others are estimates). Revisions (UBR) are fixed, illustrative patch levels.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from labctl.sim.counters import Counters

MB = 1000**2  # docker reports sizes in decimal units
MCR = "mcr.microsoft.com"
NANOSERVER = f"{MCR}/windows/nanoserver"
SERVERCORE = f"{MCR}/windows/servercore"

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
    (NANOSERVER, 20348): 297 * MB,  # hyperv-facts.md
    (NANOSERVER, 26100): 1150 * MB,  # estimate: the 2025 Nano Server image grew (unconfirmed)
    (SERVERCORE, 17763): 4840 * MB,  # hyperv-facts.md
    (SERVERCORE, 20348): 3910 * MB,  # hyperv-facts.md (upper figure)
    (SERVERCORE, 26100): 5290 * MB,  # estimate
}
# Publication dates of the modeled images (the "CREATED" column).
_CREATED: dict[int, str] = {17763: "2024-11-07T18:23:45Z", 20348: "2024-11-07T18:40:12Z",
                            26100: "2024-11-07T19:02:51Z"}
_DESCRIPTIONS = {NANOSERVER: "Nano Server base OS container image",
                 SERVERCORE: "Windows Server Core base OS container image"}


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
        """The image (config) id: the same for every tag of the same build (1809 == ltsc2019)."""
        return "sha256:" + hashlib.sha256(f"{self.repo}@{self.os_version}".encode()).hexdigest()

    @property
    def layer_ids(self) -> list[str]:
        """Layer digests (Windows base images have one base layer, servercore one update layer)."""
        count = 2 if self.repo == SERVERCORE else 1
        return [hashlib.sha256(f"{self.repo}@{self.os_version}#{i}".encode()).hexdigest() for i in range(count)]


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


def familiar(repo: str) -> str:
    """How docker shows a repo name: Hub names lose docker.io/ and library/."""
    if repo.startswith("docker.io/library/"):
        return repo[len("docker.io/library/"):]
    if repo.startswith("docker.io/"):
        return repo[len("docker.io/"):]
    return repo


def lookup(repo: str, tag: str) -> ImageManifest | None:
    """The published image for repo:tag, or None when the registry has no such tag."""
    if repo not in _DESCRIPTIONS:
        return None
    # MCR also tags each image with its full build ("10.0.20348.2849").
    version = RELEASES.get(tag) or (tag if tag in RELEASES.values() else None)
    if version is None:
        return None
    build = int(version.split(".")[2])
    return ImageManifest(repo, tag, version, _SIZES[(repo, build)], _CREATED[build])


def resolve_pull(repo: str, tag: str, host_build: int) -> ImageManifest:
    """What ``docker pull repo:tag`` gets on a Windows host of ``host_build``, or RegistryError.

    Texts: "manifest for X not found: manifest unknown: manifest tagged by "T" is not found"
    (mcr, microsoft/Windows-Containers#447); "no matching manifest for windows/amd64 10.0.<build>
    in the manifest list entries" (hyperv-facts.md; dockerd filters the list by host build).
    """
    manifest = lookup(repo, tag)
    shown = f"{familiar(repo)}:{tag}"
    if manifest is None:
        if repo.startswith(f"{MCR}/"):
            raise RegistryError(f'manifest for {shown} not found: manifest unknown: manifest tagged by "{tag}" '
                                f"is not found", before_stream=True)
        # Docker Hub answers an unknown repository with "pull access denied" (docker 20.10+ text).
        raise RegistryError(f"pull access denied for {familiar(repo)}, repository does not exist or may "
                            f"require 'docker login': denied: requested access to the resource is denied",
                            before_stream=True)
    if manifest.os_build > host_build:
        raise RegistryError(f"no matching manifest for windows/amd64 10.0.{host_build} in the manifest list "
                            f"entries", before_stream=False)
    return manifest


def count_pull(counters: Counters, manifest: ImageManifest) -> None:
    """Account one download of ``manifest`` from the registry (all its layers)."""
    counters.add(f"registry:pulls:{manifest.repo}:{manifest.tag}")
    counters.add("registry:bytes", manifest.size)


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
