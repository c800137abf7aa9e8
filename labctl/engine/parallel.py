"""Run one function per item on a bounded number of threads, and stop promptly on Ctrl-C.

The threads are daemons: on Ctrl-C the main thread sets the run's Cancel (the transport stops retrying,
the workers stop at their next host call or poll), gives the calls in flight a short grace, and leaves;
the journal, written atomically after every step, says where the next run continues.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

from labctl.transport.base import Cancel

T = TypeVar("T")
R = TypeVar("R")

GRACE_SECONDS = 5.0


def run_parallel(items: Sequence[T], fn: Callable[[T], R], workers: int, cancel: Cancel,
                 grace: float = GRACE_SECONDS) -> list[R]:
    """``fn`` of every item, at most ``workers`` at a time; results in the order of ``items``.

    ``fn`` must catch its own errors (an exception in a worker is re-raised here once all are done).
    KeyboardInterrupt in the caller's thread cancels the run and is re-raised.
    """
    results: dict[int, R] = {}
    errors: list[BaseException] = []
    slots = threading.Semaphore(max(1, workers))
    lock = threading.Lock()

    def work(index: int, item: T) -> None:
        try:
            if cancel.is_set():
                return
            value = fn(item)
            with lock:
                results[index] = value
        except BaseException as exc:  # reported by the caller's thread
            with lock:
                errors.append(exc)
        finally:
            slots.release()

    threads: list[threading.Thread] = []
    try:
        for index, item in enumerate(items):
            while not slots.acquire(timeout=0.2):
                pass
            if cancel.is_set():
                slots.release()
                break
            thread = threading.Thread(target=work, args=(index, item), daemon=True,
                                      name=f"labctl-worker-{index}")
            thread.start()
            threads.append(thread)
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)
    except KeyboardInterrupt:
        cancel.set()
        deadline = time.monotonic() + grace
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
        raise
    if errors:
        raise errors[0]
    return [results[i] for i in sorted(results)]
