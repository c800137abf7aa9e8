"""WinRM over HTTPS: the pinned fingerprint decides, on every connection of the pool (they share one TLS
context), and a certificate that does not match is refused."""

from __future__ import annotations

import concurrent.futures as cf

import pytest
from labharness import ServedSim

from labctl.errors import LabctlError
from labctl.secret import Secret
from labctl.transport.base import Invocation, Pipeline
from labctl.transport.psrp import Endpoint, PsrpTransport


def _endpoint(served: ServedSim, fingerprint: str) -> Endpoint:
    ep = served.sim.endpoint()
    return Endpoint(uri=ep["https_uri"], auth="ntlm", username=ep["username"], password=Secret(ep["password"]),
                    fingerprint=fingerprint)


def test_every_connection_of_the_pool_checks_the_pinned_certificate(served: ServedSim) -> None:
    ep = served.sim.endpoint()
    transport = PsrpTransport(_endpoint(served, ep["fingerprint"]), size=3)
    try:
        with cf.ThreadPoolExecutor(3) as pool:
            names = list(pool.map(lambda _: transport.invoke(Pipeline.of(Invocation("Get-VMHost", {}))).output,
                                  range(6)))
        assert all(len(n) == 1 for n in names) and transport.stats["connections"] >= 2
    finally:
        transport.close()


def test_a_certificate_other_than_the_pinned_one_is_refused(served: ServedSim) -> None:
    wrong = "sha256:" + ":".join(["ab"] * 32)
    transport = PsrpTransport(_endpoint(served, wrong), size=2)
    try:
        with pytest.raises(LabctlError) as err:
            transport.invoke(Pipeline.of(Invocation("Get-VMHost", {})))
        assert "TLS verification" in str(err.value) and "fingerprint" in str(err.value).lower()
    finally:
        transport.close()
