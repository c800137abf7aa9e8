"""What every PSRP transport shares: failure classes, the retry loop, the final labctl errors.

psrp.py (WinRM on pypsrp's WSMan) and oop.py (PowerShell's out-of-process framing over SSH or a local process),
both speaking PSRP with wire.py's messages and clixml.py's serialization, classify their foreign errors into a
``Failure`` once, at their boundary; the loop here turns failures into retries within the RetryPolicy,
AnswerLostError for calls that must not run twice, or the final labctl error.
"""

from __future__ import annotations

import logging
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, Protocol, TypeVar

from labctl.errors import AnswerLostError, AuthError, ConnectError, Interrupted, RemoteCommandError, TransientError
from labctl.transport.base import Cancel, Credential, Pipeline, RemoteError, Result, RetryPolicy

log = logging.getLogger("labctl.transport")

# Failure kinds: auth (credentials refused), tls / unreachable / fatal (ConnectError, never retried),
# transient (retried within the budget).
FINAL_KINDS = ("auth", "tls", "unreachable", "fatal")


class Failure(Exception):
    """A failed exchange with the host, classified once: ``kind`` is auth, tls, unreachable, fatal or transient."""

    def __init__(self, kind: str, message: str, hint: str | None = None, *, sent: bool = True) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.hint = hint
        self.sent = sent  # False when the pipeline never left (opening the connection failed)


def new_stats() -> dict[str, int]:
    """The counters every transport keeps (``transport.stats``)."""
    return {"pipelines": 0, "retries": 0, "connections": 0, "lost_answers": 0}


def refused(exc: BaseException) -> bool:
    """Nothing listens there, or the name does not resolve: no host to wait for."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, (ConnectionRefusedError, socket.gaierror)):
            return True
        text = str(cur)
        if "Connection refused" in text or "Name or service not known" in text or "nodename nor servname" in text:
            return True
        cur = cur.__cause__ or cur.__context__ or (cur.args[0] if cur.args and isinstance(cur.args[0],
                                                                                            BaseException) else None)
    return False


def short(exc: BaseException | str) -> str:
    """One line of a foreign error (urllib3's are long and nested)."""
    text = " ".join(str(exc).split())
    return text if len(text) <= 240 else text[:237] + "..."


def needs_keys(value: Any) -> bool:
    """Whether a parameter value carries a SecureString (the session key must be exchanged first)."""
    from labctl.secret import Secret

    if isinstance(value, (Secret, Credential)):
        return True
    if isinstance(value, (list, tuple)):
        return any(needs_keys(v) for v in value)
    if isinstance(value, dict):
        return any(needs_keys(v) for v in value.values())
    return False


def is_big_int(value: Any) -> bool:
    """An int outside Int32 (sizes in bytes): sent as I64, or the host cannot read it."""
    return isinstance(value, int) and not isinstance(value, bool) and not -(2**31) <= value < 2**31


def raise_final(failure: Failure, *, endpoint: str, username: str | None, command: str, attempts: int,
                seconds: float, service: str) -> None:
    """The labctl error a failure ends as; ``service`` names what keeps failing (``its WinRM service``)."""
    if failure.kind == "auth":
        raise AuthError(failure.message, endpoint=endpoint, username=username or "", hint=failure.hint)
    if failure.kind in FINAL_KINDS:
        raise ConnectError(failure.message, endpoint=endpoint, hint=failure.hint)
    raise TransientError(
        f"{command or 'a call'} kept failing on {endpoint} for {seconds:.0f} s ({attempts} attempts); "
        f"last: {failure.message}", endpoint=endpoint, attempts=attempts, seconds=seconds, last=failure.message,
        hint=f"the host answers but {service} or the network keeps failing; run the same command "
             "again (it continues where it stopped)")


def invoke_with_retries(once: Callable[[], Result], *, pipeline: Pipeline, retry: bool, policy: RetryPolicy,
                        cancel: Cancel, stats: dict[str, int], final: Callable[[Failure, str, int, float], None],
                        endpoint: str) -> Result:
    """Run ``once`` until it returns, retrying transient failures within ``policy``.

    ``final(failure, command, attempts, seconds)`` raises the labctl error of a failure that ends the call.
    """
    command = pipeline.first_command
    start = time.monotonic()
    attempt = 0
    while True:
        if cancel.is_set():
            raise Interrupted("interrupted")
        attempt += 1
        try:
            return once()
        except Failure as failure:
            elapsed = time.monotonic() - start
            if failure.kind != "transient":
                final(failure, command, attempt, elapsed)
            if not retry and failure.sent:
                stats["lost_answers"] += 1
                raise AnswerLostError(
                    f"the answer to {command} was lost ({failure.message}); it may or may not have run",
                    endpoint=endpoint, attempts=attempt, seconds=elapsed, last=failure.message) from None
            delay = policy.delay(attempt)
            if elapsed + delay > policy.budget_seconds:
                final(failure, command, attempt, elapsed)
            log.info("transient failure on %s (attempt %d, %.1f s so far): %s", command, attempt, elapsed,
                     failure.message)
            stats["retries"] += 1
            if cancel.wait(delay):
                raise Interrupted("interrupted") from None


def count_pipeline(lock: threading.Lock, stats: dict[str, int]) -> None:
    with lock:
        stats["pipelines"] += 1


def check_result(result: Result, *, had_errors: bool, command: str) -> Result:
    """Raise RemoteCommandError for a pipeline that failed (its last error record), else return the result."""
    if had_errors and result.errors:
        last: RemoteError = result.errors[-1]
        raise RemoteCommandError(last.message, command=command, fqid=last.fqid, category=last.category,
                                 target=last.target)
    if had_errors:
        raise RemoteCommandError(f"{command} failed without an error record", command=command, fqid="")
    return result


class _Closable(Protocol):
    def close(self) -> None: ...


C = TypeVar("C", bound=_Closable)


class ConnectionPool(Generic[C]):
    """At most ``size`` connections in use at once, opened on first need and reused (last used first); one that
    failed during a call may be broken, so it is closed instead of returned. Both transports pool this way."""

    def __init__(self, size: int, open_one: Callable[[], C]) -> None:
        self._open = open_one
        self._idle: queue.LifoQueue[C] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(max(1, size))

    @contextmanager
    def use(self) -> Iterator[C]:
        self._slots.acquire()
        conn: C | None = None
        try:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._open()
            yield conn
        except BaseException:
            if conn is not None:
                conn.close()
                conn = None
            raise
        finally:
            if conn is not None:
                self._idle.put(conn)
            self._slots.release()

    def close(self) -> None:
        """Close every idle connection."""
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                break
