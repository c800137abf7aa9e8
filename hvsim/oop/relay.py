"""The simulator's end of the OOP relay: a loopback listener that serves one OOP session per connection.

``python -m hvsim.oop --state DIR`` (the process sshd or labctl's local carrier starts) connects here. Wire form:

1. client -> simulator: the token of ``STATE/oop_relay.token`` (mode 0600) and ``\\n``;
2. simulator -> client: ``OK\\n``, or ``!DENIED <message>\\n`` and the connection closes;
3. then the OOP stream both ways, unchanged (every OOP packet starts with ``<``);
4. if the session ended on a fatal packet: ``!EXIT 4000 <message>\\n`` last (the relay prints the message on
   stderr and exits 4000, as PowerShell's stdio server does).
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import secrets
import socket
import threading
from collections.abc import Callable
from pathlib import Path

from hvsim.core.files import replace_private
from hvsim.oop.framing import OopProtocolError
from hvsim.oop.session import EXIT_UNHANDLED, Reader, Writer

log = logging.getLogger(__name__)

TOKEN_FILE = "oop_relay.token"  # noqa: S105 - a file name, not a secret
AUTH_TIMEOUT = 10.0

ServeFn = Callable[[Reader, Writer], "OopProtocolError | None"]


class RelayListener:
    """Accept relay connections on ``host``:random port; each authenticated one runs ``serve`` on a thread."""

    def __init__(self, state_dir: Path, serve: ServeFn, host: str = "127.0.0.1") -> None:
        self.token_path = Path(state_dir) / TOKEN_FILE
        self._serve = serve
        self._token = secrets.token_hex(32)
        replace_private(self.token_path, (self._token + "\n").encode("ascii"))
        self._sock = socket.create_server((host, 0))
        self.port: int = self._sock.getsockname()[1]
        self._stopped = threading.Event()
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept_loop, name="oop-relay", daemon=True)

    def start(self) -> RelayListener:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        # close() alone does not wake a thread blocked in accept() on Linux; shutdown() does (EINVAL).
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._sock.close()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self.token_path.unlink(missing_ok=True)
        self._thread.join(timeout=5)

    def _accept_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), name="oop-relay-conn", daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # one packet line per answer: no Nagle
        with self._lock:
            self._conns.add(conn)
        reader = conn.makefile("rb")
        writer = conn.makefile("wb")
        try:
            conn.settimeout(AUTH_TIMEOUT)
            offered = reader.readline(256).strip().decode("ascii", "replace")
            if not hmac.compare_digest(offered, self._token):
                writer.write(b"!DENIED the relay token does not match this simulator's\n")
                writer.flush()
                return
            conn.settimeout(None)
            writer.write(b"OK\n")
            writer.flush()
            error = self._serve(reader, writer)
            if error is not None:
                message = " ".join(str(error).split())
                writer.write(f"!EXIT {EXIT_UNHANDLED} {message}\n".encode())
                writer.flush()
        except (OSError, ValueError) as exc:
            log.info("OOP relay connection ended: %s", type(exc).__name__)
        finally:
            with self._lock:
                self._conns.discard(conn)
            for closing in (writer, reader):
                with contextlib.suppress(OSError, ValueError):
                    closing.close()
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
