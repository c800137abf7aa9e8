r"""Installation media on the host: the Windows Server evaluation ISOs and what their install.wim/esd holds.

Pure data and rules, no PowerShell objects (hvsim.storage.handlers.images shapes them). Facts and their sources
are in docs/facts.md "Images":

- file names and sizes as the Evaluation Center serves them (packer templates and runner docs quoting them);
- image indexes, names, descriptions and sizes as ``Get-WindowsImage -ImagePath X:\sources\install.wim`` prints
  them (public transcripts for 2022 and 2025; 2019's descriptions are the older wording, sizes unconfirmed);
- EditionId as DISM reports a Server Core / Desktop Experience evaluation image (ServerDatacenterEvalCor /
  ServerDatacenterEval; the Cor suffix for Core is unconfirmed for every build).

A medium may be a foreign ISO (no sources\install.*), a partial download (mounts, its files cannot be read:
0x80070570) or one that ships install.esd (Media Creation Tool output: recompressed, slower to apply).

A file a client uploads (labctl's ``iso_file:``) can stand in for one of these media: real ISOs are gigabytes, so
the simulator (and only it) accepts a small *placeholder ISO* whose content names a modeled medium
(``placeholder_iso(media_id)`` makes one, ``placeholder_medium(data)`` reads one). Mount-DiskImage of it behaves
like the seeded ISO of that id; its Get-FileHash is the hash of its own bytes. Any other content is no disc image.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

GIB = 1024**3
ISO_DIR = "C:\\ISO"

_CORE_2022 = ("(Recommended) This option omits most of the Windows graphical environment. Manage with a command "
              "prompt and PowerShell, or remotely with Windows Admin Center or other tools.")
_DESKTOP_2022 = ("This option installs the full Windows graphical environment, consuming extra drive space. It can "
                 "be useful if you want to use the Windows desktop or have an app that requires it.")
_CORE_2019 = ("This option is recommended as it reduces management and servicing by installing only what is needed "
              "to run most server roles and applications. It does not include a GUI, but you can fully manage the "
              "server locally or remotely with Windows PowerShell or other tools. For more details see \"Windows "
              "Server Installation Options.\"")
_DESKTOP_2019 = ("This option is useful when a GUI is required—for example, to provide backward compatibility for "
                 "an application that cannot be run on a Server Core installation. All server roles and features "
                 "are supported. For more details see \"Windows Server Installation Options.\"")


@dataclass(frozen=True)
class WimImage:
    """One image in an install.wim/esd."""

    index: int
    name: str
    description: str
    size: int  # bytes of the applied image (ImageSize)
    edition_id: str
    installation_type: str  # "Server Core" | "Server" | "Client"
    build: int
    revision: int  # the servicing revision of the medium (Version 10.0.<build>.<revision>)
    caption: str  # Win32_OperatingSystem.Caption of the installed system

    @property
    def version(self) -> str:
        return f"10.0.{self.build}.{self.revision}"


@dataclass(frozen=True)
class Medium:
    """An ISO file on the host and what it holds."""

    media_id: str
    file_name: str
    size: int
    sha256: str | None
    kind: str  # "windows" | "foreign" | "partial"
    image_file: str | None = None  # "install.wim" | "install.esd" (None: no Windows image)
    images: tuple[WimImage, ...] = field(default_factory=tuple)
    label: str = ""  # the volume label Get-Volume shows
    release: str = ""

    @property
    def path(self) -> str:
        return f"{ISO_DIR}\\{self.file_name}"

    @property
    def image_path(self) -> str | None:
        return f"\\sources\\{self.image_file}" if self.image_file else None


def _server(build: int, rev: int, year: int, sizes: tuple[int, int, int, int], core: str,
            desktop: str) -> tuple[WimImage, ...]:
    out = []
    for i, (edition, desk) in enumerate((("Standard", False), ("Standard", True), ("Datacenter", False),
                                          ("Datacenter", True)), start=1):
        eid = f"Server{edition}Eval" + ("" if desk else "Cor")
        name = f"Windows Server {year} {edition} Evaluation" + (" (Desktop Experience)" if desk else "")
        out.append(WimImage(i, name, desktop if desk else core, sizes[i - 1], eid,
                            "Server" if desk else "Server Core", build, rev,
                            f"Microsoft Windows Server {year} {edition} Evaluation"))
    return tuple(out)


MEDIA: dict[str, Medium] = {
    m.media_id: m for m in (
        Medium("ws2019-eval", "17763.3650.221105-1748.rs5_release_svc_refresh_SERVER_EVAL_x64FRE_en-us.iso",
               5_652_088_832, "6dae072e7f78f4ccab74a45341de0d6e2d45c39be25f1f5920a2ab4f51d7bcbb", "windows",
               "install.wim", _server(17763, 3650, 2019, (7_912_000_000, 14_330_000_000, 7_913_000_000,
                                                         14_331_000_000), _CORE_2019, _DESKTOP_2019),
               "SSS_X64FREE_EN-US_DV9", "ltsc2019"),
        Medium("ws2022-eval", "SERVER_EVAL_x64FRE_en-us.iso", 5_044_094_976,
               "3e4fa6d8507b554856fc9ca6079cc402df11a8b79344871669f0251535255325", "windows", "install.wim",
               _server(20348, 169, 2022, (8_351_119_400, 14_387_114_687, 8_351_903_100, 14_385_600_817),
                       _CORE_2022, _DESKTOP_2022), "SSS_X64FREE_EN-US_DV9", "ltsc2022"),
        Medium("ws2025-eval", "26100.1742.240906-0331.ge_release_svc_refresh_SERVER_EVAL_x64FRE_en-us.iso",
               6_013_175_808, None, "windows", "install.wim",
               _server(26100, 1742, 2025, (9_009_625_413, 18_993_399_495, 9_009_416_424, 18_993_190_506),
                       _CORE_2022, _DESKTOP_2022), "SSS_X64FREE_EN-US_DV9", "ltsc2025"),
        # Windows Server 2022's evaluation image recompressed to install.esd (what an ISO rebuilt with the Media
        # Creation Tool or a UUP conversion carries): the same images, a smaller file, slower to apply.
        Medium("ws2022-eval-esd", "SERVER_EVAL_x64FRE_en-us-esd.iso", 3_758_096_384, None, "windows", "install.esd",
               _server(20348, 169, 2022, (8_351_119_400, 14_387_114_687, 8_351_903_100, 14_385_600_817),
                       _CORE_2022, _DESKTOP_2022), "ESD-ISO", "ltsc2022"),
        Medium("ubuntu-24.04", "ubuntu-24.04.1-live-server-amd64.iso", 2_773_874_688, None, "foreign",
               label="Ubuntu-Server 24.04.1 LTS amd64"),
        Medium("ws2022-eval-partial", "SERVER_EVAL_x64FRE_en-us (1).iso", 1_288_490_188, None, "partial",
               "install.wim", label="SSS_X64FREE_EN-US_DV9"),
    )
}
DEFAULT_MEDIA = ("ws2019-eval", "ws2022-eval", "ws2025-eval")

# The files an installation medium's root shows (a Windows one; a foreign one shows its own few).
WINDOWS_LAYOUT = ("\\boot", "\\efi", "\\efi\\boot", "\\efi\\microsoft", "\\efi\\microsoft\\boot", "\\sources",
                  "\\support")
WINDOWS_FILES = {"\\bootmgr": 413_738, "\\bootmgr.efi": 2_793_304, "\\setup.exe": 98_632,
                 "\\efi\\boot\\bootx64.efi": 2_793_304, "\\sources\\boot.wim": 526_519_394,
                 "\\sources\\setup.exe": 301_008}
FOREIGN_LAYOUT = ("\\boot", "\\boot\\grub", "\\casper", "\\EFI", "\\EFI\\boot")
FOREIGN_FILES = {"\\casper\\vmlinuz": 14_930_312, "\\EFI\\boot\\bootx64.efi": 966_664, "\\md5sum.txt": 4_101}


def by_path(path: str) -> Medium | None:
    """The medium a host file is (matched by its full path, case-insensitive)."""
    lp = path.lower()
    return next((m for m in MEDIA.values() if m.path.lower() == lp), None)


def media_for(ids: str) -> list[Medium]:
    """The media a host setting names ("ws2022-eval,ubuntu-24.04"); unknown ids are an error."""
    out = []
    for raw in (x.strip() for x in ids.split(",")):
        if not raw:
            continue
        if raw not in MEDIA:
            raise ValueError(f"unknown installation medium {raw!r}; known: {', '.join(sorted(MEDIA))}")
        out.append(MEDIA[raw])
    return out


def medium_files(m: Medium) -> dict[str, int]:
    """Inner path -> size of every file on the medium."""
    if m.kind == "foreign":
        return dict(FOREIGN_FILES)
    files = dict(WINDOWS_FILES)
    if m.image_path:
        files[m.image_path] = _image_file_size(m)
    return files


def medium_dirs(m: Medium) -> tuple[str, ...]:
    return FOREIGN_LAYOUT if m.kind == "foreign" else WINDOWS_LAYOUT


def _image_file_size(m: Medium) -> int:
    """install.wim/esd takes most of the ISO (the rest is boot.wim and setup)."""
    return max(0, m.size - 560 * 1024**2)


def find_image(m: Medium, index: int | None = None, name: str | None = None) -> WimImage | None:
    """The image of that index or name (names match case-insensitively, as DISM does)."""
    for img in m.images:
        if index is not None and img.index == index:
            return img
        if name is not None and img.name.lower() == name.lower():
            return img
    return None


# DISM's optional feature names (Get-WindowsOptionalFeature -Path) of a Windows Server image that the simulator
# models, and the Server Manager feature each is part of in the running guest (Get-WindowsFeature).
OFFLINE_FEATURES: dict[str, str | None] = {
    "Containers": "Containers",
    "Microsoft-Hyper-V": "Hyper-V",
    "Microsoft-Hyper-V-Offline": None,
    "Microsoft-Hyper-V-Online": None,
    "Microsoft-Hyper-V-Management-PowerShell": None,
    "RSAT-Hyper-V-Tools-Feature": None,
}
# Parent features DISM requires enabled first (or -All): Microsoft-Hyper-V is the parent of the Hyper-V
# sub-features (unconfirmed which of them Server images list as parents).
FEATURE_PARENTS: dict[str, tuple[str, ...]] = {
    "Microsoft-Hyper-V-Management-PowerShell": ("Microsoft-Hyper-V",),
}


def canonical_feature(name: str) -> str | None:
    return next((f for f in OFFLINE_FEATURES if f.lower() == name.strip().lower()), None)


# --------------------------------------------------------------------------------------------- placeholder ISOs

PLACEHOLDER_MAGIC = b"HVSIM-PLACEHOLDER-ISO 1\n"
_PLACEHOLDER_MEDIUM = re.compile(rb"^media=([A-Za-z0-9][A-Za-z0-9._-]*)\r?$", re.MULTILINE)


def placeholder_iso(media_id: str) -> bytes:
    """A small file the simulated host mounts as the installation medium ``media_id`` (one of ``MEDIA``).

    Simulator only: on Windows it is no disc image. Its format (version 1) is text, the first line exactly
    ``HVSIM-PLACEHOLDER-ISO 1`` and a line ``media=<media id>``; other lines are comments. Mount-DiskImage of it
    gives that medium's volume, files and images (sizes as modeled), Get-FileHash the SHA-256 of these bytes."""
    if media_id not in MEDIA:
        raise ValueError(f"unknown installation medium {media_id!r}; known: {', '.join(sorted(MEDIA))}")
    m = MEDIA[media_id]
    return (PLACEHOLDER_MAGIC + f"media={media_id}\n".encode("ascii")
            + f"# Stands in for {m.file_name} ({m.size} bytes) on the labctl Hyper-V host simulator only; "
              "Windows cannot mount this file.\n".encode("ascii"))


def placeholder_medium(data: bytes) -> Medium | None:
    """The medium a placeholder ISO's content names, or None (not a placeholder, or an unknown id)."""
    if not data.startswith(PLACEHOLDER_MAGIC):
        return None
    found = _PLACEHOLDER_MEDIUM.search(data, len(PLACEHOLDER_MAGIC))
    return MEDIA.get(found.group(1).decode("ascii")) if found else None
