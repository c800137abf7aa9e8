"""Connecting the real pypsrp client to an in-process simulator (imported by conftest.py and the tests: a module
of its own, since several test folders have a conftest.py and only one of them can be imported as ``conftest``)."""

from __future__ import annotations

from typing import Any

from pypsrp.wsman import WSMan

from hvsim.server import Simulator

TRANSPORTS = ("https-basic", "https-ntlm", "http-ntlm")


def connect(sim: Simulator, transport: str = "https-basic", **kwargs: Any) -> WSMan:
    """A pypsrp WSMan to the simulator, as labctl's transport would build it."""
    kwargs.setdefault("operation_timeout", 20)
    if transport.startswith("https"):
        return WSMan("127.0.0.1", port=sim.https_port, ssl=True, username=sim.username, password=sim.password,
                     auth=transport.split("-", 1)[1], cert_validation=str(sim.cert_path), **kwargs)
    if transport == "http-ntlm":
        return WSMan("127.0.0.1", port=sim.http_port, ssl=False, username=sim.username, password=sim.password,
                     auth="ntlm", **kwargs)
    raise ValueError(transport)
