"""Logging for the CLI: labctl's own lines at the chosen level, foreign libraries' only when debugging.

pypsrp, spnego, urllib3 and friends log whole WSMan messages at DEBUG and their own ERROR lines for
conditions labctl handles (an HTTP 500 it retries). At the default level a user sees none of them; at
``--log-level DEBUG`` they are shown, and every line, labctl's own included, passes ``redact.scrub``.
"""

from __future__ import annotations

import logging
import sys

from labctl import redact

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _Redacting(logging.Filter):
    """Drops foreign records unless debugging; scrubs secrets from whatever is written."""

    def __init__(self, foreign: bool) -> None:
        super().__init__()
        self.foreign = foreign

    def filter(self, record: logging.LogRecord) -> bool:
        own = record.name == "labctl" or record.name.startswith("labctl.")
        if not own and not self.foreign:
            return False
        message = redact.scrub(record.getMessage())
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact.scrub(record.exc_text)
        record.msg, record.args = message, None
        return True


def configure(level: str) -> None:
    """Log to stderr at ``level`` (DEBUG, INFO, WARNING, ERROR)."""
    numeric = getattr(logging, level.upper(), logging.WARNING)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_labctl", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._labctl = True  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(_Redacting(foreign=numeric <= logging.DEBUG))
    root.addHandler(handler)
    root.setLevel(numeric)
    logging.captureWarnings(True)  # urllib3's InsecureRequestWarning and friends: foreign log lines too
