"""``python -m hvsim.oop --state DIR``: PowerShell's out-of-process server on stdin/stdout, for a SIMULATED host.

It stands where ``pwsh -s -NoLogo -NoProfile`` would (sshd's ``powershell`` subsystem, labctl's local carrier):
the OOP stream is relayed to the simulator running for DIR (``endpoint.json`` field ``oop_relay.port``, token
in ``oop_relay.token``). Exit status: 0 when the session ends, 1 when no simulator runs for DIR, 4000 after a
packet the server found fatal (message on stderr, as PowerShell's own server does; 160 on POSIX, which keeps
the low 8 bits).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import sys
import threading
from pathlib import Path

from hvsim.oop.relay import TOKEN_FILE

PROG = "hvsim.oop"


def _fail(message: str) -> int:
    sys.stderr.write(f"{PROG}: {message}\n")
    sys.stderr.flush()
    return 1


def _pump_stdin(sock: socket.socket) -> None:
    """Client -> simulator, unchanged; at EOF the simulator sees EOF too."""
    try:
        while True:
            chunk = os.read(0, 65536)
            if not chunk:
                break
            sock.sendall(chunk)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)


def relay(state_dir: Path) -> int:
    """Connect to the simulator for ``state_dir`` and relay stdio; the process exit status."""
    not_running = (f"no simulator is running for {state_dir} (this is the out-of-process PowerShell server of a "
                   f"SIMULATED Hyper-V host; start one with `labctl sim serve --state {state_dir}`)")
    try:
        endpoint = json.loads((state_dir / "endpoint.json").read_text(encoding="utf-8"))
        port = int(endpoint["oop_relay"]["port"])
        token = (state_dir / TOKEN_FILE).read_text(encoding="ascii").strip()
    except (OSError, ValueError, KeyError, TypeError):
        return _fail(not_running)
    try:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    except OSError:
        return _fail(not_running + "; its endpoint.json is stale")
    sock.settimeout(None)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # one packet line per answer: no Nagle
    incoming = sock.makefile("rb")
    sock.sendall(token.encode("ascii") + b"\n")
    answer = incoming.readline(4096)
    if answer.strip() != b"OK":
        detail = answer.decode("utf-8", "replace").strip().removeprefix("!DENIED").strip()
        return _fail(f"the simulated host for {state_dir} refused the relay: {detail or 'connection closed'}")
    threading.Thread(target=_pump_stdin, args=(sock,), name="stdin", daemon=True).start()
    out = sys.stdout.buffer
    status = 0
    try:
        for line in incoming:
            if line.startswith(b"!EXIT "):
                code, _, message = line[6:].decode("utf-8", "replace").strip().partition(" ")
                sys.stderr.write(f"{message} (SIMULATED Hyper-V host)\n")
                status = int(code) if code.isdigit() else 1
                break
            out.write(line)
            out.flush()
    except (OSError, ValueError):
        pass  # stdout closed by the client: nothing left to tell it
    return status


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m {PROG}", description=__doc__.splitlines()[0])
    parser.add_argument("--state", required=True, type=Path, help="the simulator's state folder")
    args = parser.parse_args(argv)
    return relay(args.state)


if __name__ == "__main__":
    code = main()
    with contextlib.suppress(OSError, ValueError):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)  # the stdin pump may still block in read(): do not wait for it
