"""RDP published through the host's NAT, end to end: `labctl up` the quickstart lab on a served simulator, add
a NetNat static mapping for a guest's 3389 over WinRM (as the classroom feature will), negotiate with
labctl.rdp.probe on the host port, stop the VM and see the endpoint go.

The host port comes from the OS (bind port 0), so parallel workers do not clash.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from labharness import Lab, ServedSim, make_lab, run

from labctl.app.labfile import load
from labctl.hyperv import ops
from labctl.rdp import PROTOCOL_HYBRID, RdpProbe, probe, rdp_file
from labctl.transport.base import Invocation

VM = "qs-node01"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _probe_until(port: int, reachable: bool, seconds: float = 10) -> RdpProbe:
    """Probe until the endpoint is (or is no longer) there: the simulator reconciles its listeners after
    every pipeline and every two seconds."""
    deadline = time.monotonic() + seconds
    while True:
        result = probe("127.0.0.1", port, 3)
        if result.reachable == reachable or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


@pytest.fixture(scope="module")
def rdp_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, ServedSim]]:
    lab = make_lab(tmp_path_factory.mktemp("rdp-publish"))
    served = ServedSim(lab.sim_state)
    try:
        up = run("up", str(lab.file))
        assert up.exit_code == 0, up.output
        yield lab, served
    finally:
        run("destroy", str(lab.file), "--yes")
        served.close()


def test_a_published_rdp_port_negotiates_credssp_until_the_vm_stops(rdp_lab: tuple[Lab, ServedSim]) -> None:
    lab, served = rdp_lab
    resolved = load(str(lab.file))
    vm = resolved.vm(VM)
    port = _free_port()
    assert not probe("127.0.0.1", port, 2).reachable  # nothing there before the mapping

    served.transport.invoke(ops.add_nat_static_mapping(resolved.network.nat_name, port, vm.ip, 3389), retry=False)
    # Unfiltered: the simulator's Get-NetNatStaticMapping -NatName (a string[]) matches nothing yet.
    mappings = served.transport.invoke(Invocation("Get-NetNatStaticMapping")).objects()
    assert (resolved.network.nat_name, port, vm.ip, 3389) in [
        (str(m.get("NatName")), int(m.get("ExternalPort")), str(m.get("InternalIPAddress")), int(m.get("InternalPort")))
        for m in mappings]

    result = _probe_until(port, reachable=True)
    # The guest's answer file allowed RDP and its firewall group; Windows Server requires NLA: CredSSP.
    assert result.reachable and result.ok, result.error
    assert (result.selected_protocol, result.protocol_name) == (PROTOCOL_HYBRID, "PROTOCOL_HYBRID")
    assert f"full address:s:127.0.0.1:{port}\r\n" in rdp_file("127.0.0.1", port, "Administrator")

    # The other VM has no mapping of its own: only this port is served.
    assert served.sim.rdp is not None and served.sim.rdp.ports == {port: VM}

    served.transport.invoke(ops.stop_vm(VM), retry=False)
    state = served.transport.invoke(Invocation("Get-VM", {"Name": VM})).objects()[0].get("State")
    assert str(state) == "Off"
    gone = _probe_until(port, reachable=False)
    assert not gone.reachable and gone.error is not None and "refused" in gone.error
    assert served.sim.rdp.ports == {}
