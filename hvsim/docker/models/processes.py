r"""Processes inside a simulated Windows container: what a command prints and how it ends.

Container processes are modelled, not run. ``run_command`` answers for one command line (a container's main
process or a ``docker exec``) from what the process can see (``ContainerView``): its kernel build, its host
name (the container id's first 12 characters unless ``--hostname``), its user (``User Manager\...``), its
network endpoint on the container host's ``nat`` network (an address of the nat subnet, the host's nat
address as its gateway) and the container's other processes.

Modelled: ``cmd`` (``/c`` with ``echo``, ``ver``, ``exit`` and the programs below; alone, an interactive
shell), ``powershell`` in Server Core based images (alone, or ``-Command`` with ``ipconfig``, ``hostname``,
``whoami``, ``Get-Process``, ``Get-NetIPAddress``, ``[Environment]::OSVersion``, ``Start-Sleep``, ``exit``),
``hostname``, ``whoami``, ``ipconfig``, ``ping``, ``timeout``, ``waitfor`` and IIS's ``ServiceMonitor``.
Programs an image does not have fail as Windows fails them: ``powershell`` in Nano Server, Linux shells, cmd
built-ins run as programs (HCS CreateProcess "The system cannot find the file specified."). Anything else is
refused with "not modelled by the simulator", never answered with made-up output.

A shell with no command reads its commands from stdin: when docker gives it a stdin nobody writes to (``run -di``,
``start`` of a container created with ``-i``) it waits, i.e. keeps running; when its stdin is the docker client's
(``run -i`` over PowerShell Direct, whose native-command stdin is empty) or there is none, it reads end-of-file
at once, prints its prompt and exits 0.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass, field

NANOSERVER = "nanoserver"
SERVERCORE = "servercore"


@dataclass
class ProcessRun:
    """The modeled result of a command inside a container."""

    output: list[str]
    exit_code: int
    long_running: bool = False
    not_found: bool = False  # the executable is not in the image (HCS CreateProcess fails)
    not_modelled: bool = False  # a real command the simulator does not model


@dataclass(frozen=True)
class ContainerView:
    """What a process in the container sees of it."""

    id: str
    hostname: str
    user: str  # the account, e.g. ContainerAdministrator
    family: str  # NANOSERVER | SERVERCORE (the base image the container's image was built on)
    build: int  # kernel build the process sees (the image's under Hyper-V isolation, the host's otherwise)
    revision: int
    ip: str = ""
    prefix_length: int = 20
    gateway: str = ""
    apps: tuple[str, ...] = ()  # programs the image adds to its base (IIS: servicemonitor)
    processes: tuple[str, ...] = field(default_factory=tuple)  # the container's other running programs


# Programs of the base images the model knows (lower case, without .exe). Everything Nano Server has, Server
# Core has too; Server Core adds Windows PowerShell 5.1. Neither has PowerShell 7 (pwsh) or a Linux shell.
_COMMON = {"cmd", "hostname", "whoami", "ipconfig", "ping", "timeout", "waitfor"}
_PROGRAMS = {NANOSERVER: _COMMON, SERVERCORE: _COMMON | {"powershell"}}
# Names Windows cannot start in these images: cmd built-ins (there is no ver.exe), other platforms' shells.
_NEVER = {"ver", "echo", "dir", "set", "type", "cls", "pwsh", "sh", "bash", "/bin/sh", "/bin/bash"}


def _exe(word: str) -> str:
    """"C:\\Windows\\System32\\cmd.exe" -> "cmd"."""
    name = word.strip().strip('"').lower().replace("/", "\\")
    if name.startswith("\\bin\\"):  # /bin/sh written with forward slashes
        return name.replace("\\", "/")
    return name.rsplit("\\", 1)[-1].removesuffix(".exe")


def has_program(view: ContainerView, word: str) -> bool | None:
    """True: the image has it; False: Windows cannot start it there; None: the simulator does not know."""
    exe = _exe(word)
    if exe in _PROGRAMS.get(view.family, _COMMON) or exe in view.apps:
        return True
    if exe in _NEVER or exe in ("powershell", "servicemonitor"):
        return False
    return None


def not_modelled_text(argv: list[str]) -> str:
    return (f"The simulated container does not model the command: {' '.join(argv)}. It models cmd (/c echo, ver, "
            f"exit and the programs that follow), hostname, whoami, ipconfig, ping, timeout, and powershell "
            f"(Server Core) with no command or with ipconfig, hostname, whoami, Get-Process, Get-NetIPAddress, "
            f"[Environment]::OSVersion or Start-Sleep; anything else is not modelled by the simulator.")


def _not_modelled(argv: list[str]) -> ProcessRun:
    return ProcessRun([not_modelled_text(argv)], 125, not_modelled=True)


def run_command(view: ContainerView, argv: list[str], *, stdin_waits: bool) -> ProcessRun:
    """Model ``argv`` started in the container (CreateProcess of argv[0] with the rest as its arguments)."""
    words = list(argv) or ["c:\\windows\\system32\\cmd.exe"]
    known = has_program(view, words[0])
    if known is False:
        return ProcessRun([], 127, not_found=True)
    if known is None:
        return _not_modelled(words)
    exe, rest = _exe(words[0]), words[1:]
    if exe == "cmd":
        return _cmd(view, words, rest, stdin_waits=stdin_waits)
    if exe == "powershell":
        return _powershell(view, words, rest, stdin_waits=stdin_waits)
    if exe == "servicemonitor":
        # IIS's entry point: watches the w3svc service and runs as long as it does (prints nothing when healthy).
        return ProcessRun([], 0, long_running=True)
    return _program(view, exe, words, rest)


def _program(view: ContainerView, exe: str, words: list[str], rest: list[str]) -> ProcessRun:
    """The programs both base images have (outside any shell)."""
    if exe == "hostname":
        return ProcessRun([view.hostname], 0)
    if exe == "whoami":
        return ProcessRun([whoami(view)], 0) if not rest else _not_modelled(words)
    if exe == "ipconfig":
        return ProcessRun(ipconfig(view), 0) if not rest else _not_modelled(words)
    if exe == "ping":
        return _ping(rest)
    if exe in ("timeout", "waitfor"):
        return ProcessRun([], 0, long_running=True)
    return _not_modelled(words)


def _banner_cmd(view: ContainerView) -> list[str]:
    return [f"Microsoft Windows [Version 10.0.{view.build}.{view.revision}]",
            "(c) Microsoft Corporation. All rights reserved.", ""]


def _cmd(view: ContainerView, words: list[str], rest: list[str], *, stdin_waits: bool) -> ProcessRun:
    # cmd's own switches come before /c or /k (/s /q /d ... change quoting and echo, not the result here).
    i = 0
    while i < len(rest) and (rest[i].lower() in ("/s", "/q", "/d", "/a", "/u")
                             or rest[i].lower().startswith(("/e:", "/f:", "/v:", "/t:"))):
        i += 1
    if i < len(rest) and rest[i].lower() == "/c":
        # cmd joins the rest into one command line: `cmd /c "echo hi"` == `cmd /c echo hi`.
        inner = " ".join(rest[i + 1:]).split()
        if not inner:
            return ProcessRun([], 0)
        sub = inner[0].lower()
        if sub == "ver":
            return ProcessRun(["", f"Microsoft Windows [Version 10.0.{view.build}.{view.revision}]"], 0)
        if sub == "echo":
            return ProcessRun([" ".join(inner[1:])], 0)
        if sub == "exit":
            code = inner[1] if len(inner) > 1 else "0"
            return ProcessRun([], int(code)) if re.fullmatch(r"-?\d+", code) else _not_modelled(words)
        if has_program(view, inner[0]) is False:
            # cmd's own answer for a program it cannot find, exit code 9009 (not an HCS error: cmd did start).
            return ProcessRun([f"'{inner[0]}' is not recognized as an internal or external command,",
                               "operable program or batch file."], 9009)
        return run_command(view, inner, stdin_waits=False)
    if i < len(rest):
        return _not_modelled(words)  # /k and other forms
    # An interactive shell: it lives as long as its stdin stays open.
    if stdin_waits:
        return ProcessRun([*_banner_cmd(view), "C:\\>"], 0, long_running=True)
    return ProcessRun([*_banner_cmd(view), "C:\\>"], 0)


def _banner_powershell(view: ContainerView) -> list[str]:
    lines = ["Windows PowerShell", "Copyright (C) Microsoft Corporation. All rights reserved.", ""]
    if view.build >= 20348:
        # Windows PowerShell 5.1 on Windows Server 2022 and later advertises PowerShell 7 (unconfirmed wording
        # inside containers; it is the host console's text).
        lines += ["Install the latest PowerShell for new features and improvements! https://aka.ms/PSWindows", ""]
    return lines


_PS_SWITCHES = {"-nologo", "-noprofile", "-noninteractive", "-nop", "-noni", "-mta", "-sta"}


def _powershell(view: ContainerView, words: list[str], rest: list[str], *, stdin_waits: bool) -> ProcessRun:
    i = 0
    command: list[str] | None = None
    while i < len(rest):
        flag = rest[i].lower()
        if flag in _PS_SWITCHES:
            i += 1
        elif flag in ("-executionpolicy", "-ep", "-inputformat", "-outputformat", "-windowstyle"):
            i += 2
        elif flag in ("-command", "-c"):
            command = rest[i + 1:]
            break
        elif flag.startswith("-"):
            return _not_modelled(words)  # -File, -EncodedCommand, ...
        else:
            command = rest[i:]  # powershell.exe reads the rest as -Command
            break
    if command is None:
        if stdin_waits:
            return ProcessRun(_banner_powershell(view), 0, long_running=True)
        return ProcessRun([*_banner_powershell(view), "PS C:\\> "], 0)
    return _ps_command(view, words, " ".join(command).strip())


def _ps_command(view: ContainerView, words: list[str], text: str) -> ProcessRun:
    """One PowerShell command without pipelines (the simulator has no PowerShell engine)."""
    if any(ch in text for ch in "|;") or not text:
        return _not_modelled(words)
    low = text.lower()
    if "[environment]::osversion" in low:
        return ProcessRun(["", "Platform ServicePack Version      VersionString",
                           "-------- ----------- -------      -------------",
                           f" Win32NT             10.0.{view.build}.0 Microsoft Windows NT 10.0.{view.build}.0",
                           ""], 0)
    parts = text.split()
    head = parts[0].lower()
    if head == "start-sleep":
        return ProcessRun([], 0, long_running=True)
    if head == "exit":
        code = parts[1] if len(parts) > 1 else "0"
        return ProcessRun([], int(code)) if re.fullmatch(r"-?\d+", code) else _not_modelled(words)
    if head in ("get-process", "gps", "ps") and len(parts) == 1:
        return ProcessRun(get_process(view), 0)
    if head == "get-netipaddress":
        family = None
        args = [p.lower() for p in parts[1:]]
        if args[:1] == ["-addressfamily"] and len(args) == 2 and args[1] in ("ipv4", "ipv6"):
            family = "IPv4" if args[1] == "ipv4" else "IPv6"
        elif args:
            return _not_modelled(words)
        return ProcessRun(get_net_ip_address(view, family), 0)
    if head in ("hostname", "hostname.exe", "whoami", "whoami.exe", "ipconfig", "ipconfig.exe") and len(parts) == 1:
        return _program(view, _exe(head), parts, [])
    return _not_modelled(words)


# --------------------------------------------------------------------------------------------- output


def whoami(view: ContainerView) -> str:
    """Container accounts live in the "User Manager" virtual domain; whoami prints lower case."""
    return f"user manager\\{view.user.lower()}"


def if_index(view: ContainerView) -> int:
    """The container's interface index (a fresh compartment numbers its adapter low; stable per container)."""
    return 4 + int(view.id[:4], 16) % 28


def link_local(view: ContainerView) -> str:
    """The adapter's fe80:: address (random interface id on Windows; derived from the container id here)."""
    h = hashlib.sha256(f"ll|{view.id}".encode()).hexdigest()
    groups = [h[i:i + 4].lstrip("0") or "0" for i in range(0, 16, 4)]
    return "fe80::" + ":".join(groups)


ADAPTER = "vEthernet (Ethernet)"  # the container's HNS endpoint as its adapter (name unconfirmed)


def ipconfig(view: ContainerView) -> list[str]:
    """``ipconfig`` as Windows prints it: the container's one adapter on the nat network."""
    mask = str(ipaddress.ip_network(f"0.0.0.0/{view.prefix_length}").netmask)
    return ["", "Windows IP Configuration", "", "", f"Ethernet adapter {ADAPTER}:", "",
            "   Connection-specific DNS Suffix  . : ",
            f"   Link-local IPv6 Address . . . . . : {link_local(view)}%{if_index(view)}",
            f"   IPv4 Address. . . . . . . . . . . : {view.ip}",
            f"   Subnet Mask . . . . . . . . . . . : {mask}",
            f"   Default Gateway . . . . . . . . . : {view.gateway}"]


def get_net_ip_address(view: ContainerView, family: str | None = None) -> list[str]:
    """Get-NetIPAddress as Windows PowerShell lists it (Format-List of MSFT_NetIPAddress), IPv6 first."""
    infinite = "Infinite ([TimeSpan]::MaxValue)"
    rows = [
        (f"{link_local(view)}%{if_index(view)}", if_index(view), ADAPTER, "IPv6", 64, "WellKnown", "Link"),
        ("::1", 1, "Loopback Pseudo-Interface 1", "IPv6", 128, "WellKnown", "WellKnown"),
        (view.ip, if_index(view), ADAPTER, "IPv4", view.prefix_length, "Manual", "Manual"),
        ("127.0.0.1", 1, "Loopback Pseudo-Interface 1", "IPv4", 8, "WellKnown", "WellKnown"),
    ]
    out = ["", ""]
    for ip, index, alias, fam, prefix, p_origin, s_origin in rows:
        if family and fam != family:
            continue
        out += [f"IPAddress         : {ip}", f"InterfaceIndex    : {index}", f"InterfaceAlias    : {alias}",
                f"AddressFamily     : {fam}", "Type              : Unicast", f"PrefixLength      : {prefix}",
                f"PrefixOrigin      : {p_origin}", f"SuffixOrigin      : {s_origin}",
                "AddressState      : Preferred", f"ValidLifetime     : {infinite}",
                f"PreferredLifetime : {infinite}", "SkipAsSource      : False", "PolicyStore       : ActiveStore",
                ""]
    return [*out, ""]


# The processes of a Windows Server Core container besides its own commands: the container's session 0
# (smss, csrss, wininit, services, lsass, svchost hosts, the container execution service CExecSvc) and the
# user session (csrss). (Handles, NPM(K), PM(K), WS(K), CPU seconds), typical figures (illustrative).
_SYSTEM = [("CExecSvc", 0, (138, 9, 1512, 6632, 0.02)), ("csrss", 0, (114, 9, 1208, 5224, 0.06)),
           ("csrss", 1, (102, 8, 1104, 4980, 0.03)), ("lsass", 0, (587, 21, 4640, 13892, 0.14)),
           ("msdtc", 0, (198, 12, 2372, 9420, 0.03)), ("services", 0, (286, 11, 2892, 7920, 0.16)),
           ("smss", 0, (51, 3, 480, 1224, 0.02)), ("svchost", 0, (421, 16, 5640, 14028, 0.09)),
           ("svchost", 0, (305, 14, 3364, 10356, 0.05)), ("svchost", 0, (689, 28, 8512, 21120, 0.19)),
           ("svchost", 0, (212, 12, 2068, 8812, 0.02)), ("svchost", 0, (157, 10, 1832, 7060, 0.02)),
           ("wininit", 0, (142, 10, 1364, 6644, 0.03))]
_OWN = {"powershell": (573, 30, 60324, 70364, 0.61), "cmd": (60, 4, 1932, 3216, 0.00),
        "ping": (72, 5, 708, 3656, 0.00), "servicemonitor": (150, 10, 1664, 6500, 0.02),
        "timeout": (55, 4, 620, 3012, 0.00), "waitfor": (55, 4, 612, 3004, 0.00)}
_DISPLAY = {"servicemonitor": "ServiceMonitor"}


def get_process(view: ContainerView) -> list[str]:
    """Get-Process as Windows PowerShell 5.1 prints it (its default table, sorted by name), for the container's
    processes: the system ones, its running programs and the powershell answering."""
    procs = [(name, si, fig) for name, si, fig in _SYSTEM]
    for prog in [*view.processes, "powershell"]:
        exe = _exe(prog)
        procs.append((_DISPLAY.get(exe, exe), 1, _OWN.get(exe, (80, 6, 1200, 4800, 0.01))))
    rows = []
    used: set[int] = set()
    for n, (name, si, (handles, npm, pm, ws, cpu)) in enumerate(sorted(procs, key=lambda p: p[0].lower())):
        # Process ids: multiples of 4, distinct, stable per container (Windows hands them out at random).
        pid = 4 * (100 + int(hashlib.sha256(f"pid|{view.id}|{n}".encode()).hexdigest()[:6], 16) % 3000)
        while pid in used:
            pid += 4
        used.add(pid)
        rows.append(f"{handles:>7}{npm:>8}{pm:>9}{ws:>11}{cpu:>11.2f}{pid:>7}{si:>4} {name}")
    return ["", "Handles  NPM(K)    PM(K)      WS(K)     CPU(s)     Id  SI ProcessName",
            "-------  ------    -----      -----     ------     --  -- -----------", *rows, "", ""]


def _ping(rest: list[str]) -> ProcessRun:
    host = next((a for a in rest if not a.startswith(("-", "/")) and not a.isdigit()), "localhost")
    if any(a.lower() in ("-t", "/t") for a in rest):
        return ProcessRun([f"Pinging {host} [::1] with 32 bytes of data:", "Reply from ::1: time<1ms"], 0,
                          long_running=True)
    n = 4
    for i, a in enumerate(rest):
        if a.lower() in ("-n", "/n") and i + 1 < len(rest) and rest[i + 1].isdigit():
            n = int(rest[i + 1])
    return ProcessRun([f"Pinging {host} [::1] with 32 bytes of data:"] + ["Reply from ::1: time<1ms"] * n
                      + ["", "Ping statistics for ::1:",
                         f"    Packets: Sent = {n}, Received = {n}, Lost = 0 (0% loss),"], 0)
