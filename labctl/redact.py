"""Secrets out of every log line: a registry of secret texts, and the scrubbing of log text.

Every ``Secret`` registers its text here when made, with the forms it travels in (the answer file's
base64 of UTF-16LE with the element's suffix, XML-escaped). ``scrub`` replaces those, and any long run
of base64 (a WSMan message's PSRP fragments, which carry answer files and keys, a PEM body), with a
placeholder, so even a foreign library's debug dump of a whole message shows no secret.
"""

from __future__ import annotations

import base64
import re
import threading
from xml.sax.saxutils import escape

REDACTED = "<redacted>"
# Shorter texts are not worth a global replace (and Windows refuses passwords under 8 characters anyway).
MIN_SECRET = 6
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{60,}={0,2}")

_lock = threading.Lock()
_secrets: set[str] = set()


def _forms(text: str) -> set[str]:
    forms = {text, escape(text, {'"': "&quot;", "'": "&apos;"})}
    for suffix in ("AdministratorPassword", "Password"):
        forms.add(base64.b64encode((text + suffix).encode("utf-16-le")).decode("ascii"))
    forms.add(base64.b64encode(text.encode("utf-8")).decode("ascii"))
    return {f for f in forms if len(f) >= MIN_SECRET}


def register(text: str) -> None:
    """Remember a secret so that no log line shows it (or its usual encodings)."""
    if len(text) < MIN_SECRET:
        return
    forms = _forms(text)
    with _lock:
        _secrets.update(forms)


def scrub(text: str) -> str:
    """``text`` with every registered secret and every long base64 run replaced."""
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return _BASE64_RUN.sub(lambda m: f"<{len(m.group(0))} base64 chars>", text)
