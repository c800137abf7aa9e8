"""The local carrier: PowerShell's out-of-process server as a child process, PSRP over its stdin/stdout.

On Windows (labctl on the Hyper-V host itself) that is ``powershell.exe -s -NoLogo -NoProfile``, the server
PowerShell's own ``New-PSSession -UseWindowsPowerShell``/job processes speak to. The command can be replaced
with the environment variable LABCTL_LOCAL_SERVER (a shell-like command line): the tests point it to the
simulator's relay, ``python -m hvsim.oop --state DIR``. One process per session.
"""

from __future__ import annotations

import collections
import os
import shlex
import subprocess
import sys
import threading
from collections.abc import Mapping
from typing import IO

from labctl.errors import ConnectError
from labctl.transport.base import Cancel, RetryPolicy
from labctl.transport.common import Failure
from labctl.transport.oop import OopTransport, Reader, Writer

ENV_SERVER = "LABCTL_LOCAL_SERVER"
WINDOWS_SERVER = ("powershell.exe", "-s", "-NoLogo", "-NoProfile")
ENDPOINT = "local"
_STDERR_KEEP = 20  # lines of the server's stderr kept for the message when it ends


def server_command(env: Mapping[str, str] | None = None, platform: str | None = None) -> list[str]:
    """The server's command line: LABCTL_LOCAL_SERVER, else powershell.exe -s on Windows; ConnectError otherwise."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    override = env.get(ENV_SERVER, "").strip()
    if override:
        try:
            argv = shlex.split(override, posix=not platform.startswith("win"))
        except ValueError as exc:
            raise ConnectError(f"{ENV_SERVER} is not a valid command line: {exc}", endpoint=ENDPOINT,
                               hint=f"quote it as a shell would, e.g. {ENV_SERVER}='pwsh -s -NoLogo'") from exc
        if argv:
            return argv
    if platform.startswith("win"):
        return list(WINDOWS_SERVER)
    raise ConnectError(
        "host: {uri: local} runs PowerShell's out-of-process server (powershell.exe -s) on this machine, "
        f"which needs Windows; this is {platform}", endpoint=ENDPOINT,
        hint=f"run labctl on the Hyper-V host, use uri: ssh://user@host, or set {ENV_SERVER} to a server command")


class LocalCarrier:
    """One child process serving PSRP out-of-process on its stdin/stdout."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=_STDERR_KEEP)
        self._stderr_thread: threading.Thread | None = None

    def open(self) -> tuple[Reader, Writer]:
        try:
            self._proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                          stderr=subprocess.PIPE, bufsize=0)
        except FileNotFoundError as exc:
            raise Failure("unreachable", f"cannot start the local PowerShell server: {self.argv[0]} not found",
                          f"install PowerShell, or set {ENV_SERVER} to the server command", sent=False) from exc
        except OSError as exc:
            raise Failure("unreachable", f"cannot start the local PowerShell server {self.argv[0]}: "
                          f"{exc.strerror or exc}", f"check {ENV_SERVER} or the PowerShell install",
                          sent=False) from exc
        assert self._proc.stdout is not None and self._proc.stdin is not None
        self._stderr_thread = threading.Thread(target=self._drain, args=(self._proc.stderr,),
                                               name="labctl-local-stderr", daemon=True)
        self._stderr_thread.start()
        return self._proc.stdout, self._proc.stdin

    def _drain(self, stream: IO[bytes] | None) -> None:
        if stream is None:
            return
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").strip()
            if line:
                self._stderr.append(line)

    def exit_reason(self) -> str | None:
        """The server's exit code and the last lines it wrote on stderr, once it ended."""
        if self._proc is None:
            return None
        try:
            code = self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return None
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout=2)
        text = " ".join(self._stderr)
        return f"the server command exited with code {code}" + (f": {text}" if text else "")

    def close(self) -> None:
        proc = self._proc
        if proc is None:
            return
        try:
            if proc.stdin is not None:
                proc.stdin.close()  # the server ends at EOF on its input
        except OSError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def local_transport(*, size: int = 4, policy: RetryPolicy | None = None, cancel: Cancel | None = None,
                    env: Mapping[str, str] | None = None) -> OopTransport:
    """An OopTransport over local server processes; ConnectError when no server command applies here."""
    argv = server_command(env)
    return OopTransport(ENDPOINT, lambda: LocalCarrier(argv), size=size, policy=policy, cancel=cancel,
                        service="the local PowerShell server")
