"""A threaded HTTP server that tracks its connections, shared by the WinRM and Docker API listeners.

Both need the same things from http.server: daemon threads, a cap on open connections (more are refused
at once instead of piling up threads), quiet handling of clients that break off, and a way to cut every
open connection when the listener stops.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)


class TrackingHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with a connection cap and close_connections(); handlers add and discard
    their sockets in ``connections`` under ``conn_lock``."""

    daemon_threads = True
    allow_reuse_address = True
    max_connections = 512

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self.connections: set[socket.socket] = set()
        self.conn_lock = threading.Lock()
        super().__init__(address, handler)

    def verify_request(self, request: Any, client_address: Any) -> bool:
        with self.conn_lock:
            return len(self.connections) < self.max_connections

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A reset, a refused TLS handshake or a timeout is the client's business, not a server fault.
        log.debug("connection from %s ended with an error", client_address, exc_info=True)

    def close_connections(self) -> None:
        with self.conn_lock:
            conns = list(self.connections)
            self.connections.clear()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
