"""A threaded HTTP server that tracks its connections, and the request handler base its listeners share: the
WinRM and Docker API listeners.

Both need the same things from http.server: daemon threads, a cap on open connections (more are refused
at once instead of piling up threads), quiet handling of clients that break off, and a way to cut every
open connection when the listener stops. Their handlers register their (possibly TLS-wrapped) socket when
the connection is set up, drop it when it finishes, send every method to one ``_serve`` and read
Content-Length the same way.
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

    def serve_in_thread(self, name: str, poll_interval: float) -> threading.Thread:
        """serve_forever in a started daemon thread."""
        thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": poll_interval}, name=name,
                                  daemon=True)
        thread.start()
        return thread

    def stop(self, thread: threading.Thread | None) -> None:
        """Stop serving, close the listening socket and every open connection, then join ``thread``."""
        self.shutdown()
        self.server_close()
        self.close_connections()
        if thread is not None:
            thread.join(timeout=5)


class TrackingRequestHandler(BaseHTTPRequestHandler):
    """An HTTP/1.1 keep-alive handler of a :class:`TrackingHTTPServer`.

    A subclass calls :meth:`track` from ``setup`` with the socket it serves (after any TLS wrapping) and
    implements :meth:`_serve`, which GET, POST, PUT and DELETE reach (HEAD is each subclass's own).
    """

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    sys_version = ""
    server: TrackingHTTPServer

    def track(self, sock: socket.socket) -> None:
        """Serve ``sock`` and list it among the server's open connections (close_connections cuts it)."""
        self.request = sock
        with self.server.conn_lock:
            self.server.connections.add(sock)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.conn_lock:
                self.server.connections.discard(self.request)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        raise NotImplementedError

    def content_length(self) -> int:
        """The request's Content-Length: 0 when absent or blank, -1 when it is not a number."""
        raw = (self.headers.get("Content-Length") or "0").strip() or "0"
        try:
            return int(raw)
        except ValueError:
            return -1
