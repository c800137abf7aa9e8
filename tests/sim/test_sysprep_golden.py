r"""Golden container-host images: a build VM from an ISO-built base runs the container-host bootstrap, the
golden-clean and sysprep guest steps (the contract's headers), shuts down; a VM on a child of its disk starts as a
container host with a new identity and does no feature install, Docker install or registry pull (counters, also
over the control endpoint). And Sysprep's refusals with their setuperr.log lines.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from container_lab import DOCKER_VERSION, NANO_2022, Lab
from guest_world import make_vm
from test_images_iso import ImageHost
from test_images_servicing import build_base
from unattend_samples import VALID, dns, document, rdp, shell_specialize, tcpip

from hvsim.control import ControlClient
from hvsim.docker.models import engine as C
from hvsim.guest.models import guest as G
from hvsim.server import Simulator

PEM = "-----BEGIN CERTIFICATE-----\nMIIBsim\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEsim\n-----END RSA PRIVATE KEY-----\n"
BUILD_DISK = "C:\\Labs\\build.vhdx"
SETUPERR = "\\Windows\\System32\\Sysprep\\Panther\\setuperr.log"
# The answer file sysprep is given for the golden image (labctl renders its own; any valid one here).
GOLDEN_UNATTEND = document(specialize=shell_specialize("GOLDEN") + rdp())
COUNTERS = ("feature_installs", "docker_installs", "registry_pulls")


def _bootstrapped(lab: Lab, name: str = "build", base: str | None = None) -> Any:
    """A build VM with features (rebooted), Docker, nanoserver and the lab's TLS: a ready container host."""
    vm = lab.vm(name, base=base)
    lab.container_host(name)
    assert lab.step(name, "image-pull", [NANO_2022]).one.get("Changed") is True
    lab.step(name, "docker-tls", PEM, PEM, KEY).one  # noqa: B018  (asserts one output, no error)
    return vm


def _golden_guest(lab: Lab, name: str, index: int) -> Any:
    """A VM on a differencing child of the generalized build disk, with its own answer file."""
    answer = document(specialize=shell_specialize(f"LAB-{name.upper()}") + tcpip(mac=f"00-15-5D-38-01-0{index}",
                                                                                  ip=f"10.0.0.{10 + index}/24")
                      + dns(mac=f"00-15-5D-38-01-0{index}") + rdp())
    vm = make_vm(lab.world, name, answer, base=BUILD_DISK, mac=f"00155D38010{index}", start=False)
    vm.expose_virtualization_extensions = True
    lab.world.hv.start(vm)
    lab.wait_ready(vm)
    return vm


def _generalize(lab: Lab) -> Any:
    clean = lab.step("build", "golden-clean").one
    out = lab.step("build", "sysprep", GOLDEN_UNATTEND).one
    assert (out.get("ExitCode"), out.get("Errors")) == (0, []), out.get("Errors")
    return clean


def test_a_golden_guest_starts_as_a_container_host_and_installs_nothing() -> None:
    lab = ImageHost()
    base = build_base(lab)
    build = _bootstrapped(lab, base=base)
    clean = _generalize(lab)
    removed, kept = clean.get("Removed"), clean.get("Kept")
    for item in ("C:\\Windows\\Panther\\unattend.xml", "C:\\ProgramData\\docker\\certs.d\\server-key.pem",
                 "HNS network nat", "firewall rule labctl Docker TLS"):
        assert item in removed, removed
    assert not any(r.startswith("C:\\ProgramData\\docker\\config\\daemon.json") for r in removed)  # it had no tls keys
    assert kept == ["feature Containers", "feature Hyper-V", f"service docker {DOCKER_VERSION} (registered, stopped)",
                    NANO_2022]
    assert build.state == "Off"  # sysprep /shutdown
    for what, n in zip(COUNTERS, (2, 1, 1), strict=True):
        assert lab.world.counters.guest("build", what) == n

    g1 = _golden_guest(lab, "g1", 2)
    g = g1.guest
    assert g.setup == G.DONE and g.computer_name == "LAB-G1" and g.computer_name != build.guest.computer_name
    assert g.applied_passes == ["specialize", "oobeSystem"]  # a generalized image: setup ran again
    (feat,) = lab.step("g1", "container-features", ["Containers", "Hyper-V"]).outputs
    assert (feat.get("Changed"), feat.get("Facts")["Installed"]) == (False, ["Containers", "Hyper-V"])
    assert C.daemon_running(lab.world, g1, g)  # the docker service started at boot
    rows = lab.docker("g1", "images").get("Output")[1:]
    assert [row.split()[:2] for row in rows] == [NANO_2022.split(":")]
    assert lab.step("g1", "image-pull", [NANO_2022]).one.get("Changed") is False
    # dockerd created its nat network again in this guest, on the new machine.
    nat = lab.docker("g1", "network", "inspect", "nat").get("ExitCode")
    assert nat == 0
    for what in COUNTERS:
        assert lab.world.counters.guest("g1", what) == 0, what
    # The image remembers it was generalized once, from the ISO's Datacenter Evaluation image.
    info = lab.world.storage.os_info(BUILD_DISK)
    assert info is not None and info["generalize_count"] == 1 and info["build"] == 20348
    assert info["features"] == {"Containers": "Enabled", "Microsoft-Hyper-V": "Enabled"}


def test_counters_reach_the_control_endpoint(tmp_path: Path) -> None:
    with Simulator(tmp_path / "state", profile="instant") as sim:
        assert sim.world is not None
        lab = Lab(sim.world)
        _bootstrapped(lab)
        _generalize(lab)
        _golden_guest(lab, "g1", 2)
        guests = ControlClient.from_state_dir(tmp_path / "state").counters()["guests"]
    assert guests["build"] == {"docker_installs": 1, "feature_installs": 2, "registry_pulls": 1}
    assert "g1" not in guests  # nothing counted for the golden guest


def test_sysprep_refuses_while_a_feature_waits_for_its_reboot() -> None:
    lab = Lab()
    vm = lab.vm("build")
    assert lab.step("build", "container-features", ["Containers"]).one.get("RebootNeeded") is True
    out = lab.step("build", "sysprep", GOLDEN_UNATTEND).one
    assert out.get("ExitCode") == 1
    errors = out.get("Errors")
    assert "There are one or more Windows updates that require a reboot. To run Sysprep, reboot the computer and " \
           "restart the application." in errors[0]
    assert ", Error      [0x0f0070] SYSPRP RunExternalDlls:An error occurred while running registry sysprep DLLs, " \
           "halting sysprep execution. dwRet = 0x36b7" in errors[4]
    assert vm.state == "Running"  # nothing was generalized
    log = lab.world.storage.read_file(vm.hard_drives[0], SETUPERR)
    assert log is not None and errors[0].encode() in log
    lab.reboot("build")
    assert lab.step("build", "sysprep", GOLDEN_UNATTEND).one.get("ExitCode") == 0


def test_sysprep_refuses_past_the_generalize_limit() -> None:
    lab = ImageHost()
    base = build_base(lab)
    vhd = lab.world.storage.get_vhd(base)
    assert vhd is not None and vhd.os is not None
    vhd.os["generalize_count"] = 1001  # an image Sysprep already generalized 1001 times (Microsoft Learn's limit)
    vm = lab.vm("build", base=base)
    out = lab.step("build", "sysprep", GOLDEN_UNATTEND).one
    assert out.get("ExitCode") == 1
    assert any("SLReArmWindows" in e and "0xc004d307" in e for e in out.get("Errors"))
    assert vm.state == "Running"


def test_a_second_generalize_counts_on() -> None:
    lab = Lab()
    _bootstrapped(lab)
    _generalize(lab)
    g1 = _golden_guest(lab, "g1", 2)
    assert g1.guest.setup == G.DONE
    info = lab.world.storage.os_info(BUILD_DISK)
    assert info is not None and info["generalize_count"] == 1
    assert VALID != GOLDEN_UNATTEND


def test_golden_clean_strips_the_tls_settings_so_dockerd_starts_in_every_new_guest() -> None:
    import hashlib

    from container_lab import zip_path

    lab = Lab()
    lab.vm("build")
    lab.step("build", "container-features", ["Containers"]).one  # noqa: B018
    lab.reboot("build")
    lab.step("build", "docker-tls", PEM, PEM, KEY).one  # noqa: B018
    data = lab.put_zip("build")
    tls_json = ('{"hosts": ["tcp://0.0.0.0:2376", "npipe://"], "tlsverify": true, '
                '"tlscacert": "C:\\\\ProgramData\\\\docker\\\\certs.d\\\\ca.pem", '
                '"tlscert": "C:\\\\ProgramData\\\\docker\\\\certs.d\\\\server-cert.pem", '
                '"tlskey": "C:\\\\ProgramData\\\\docker\\\\certs.d\\\\server-key.pem", "fixed-cidr": "172.30.16.0/20"}')
    assert lab.step("build", "docker-install", zip_path(DOCKER_VERSION), hashlib.sha256(data).hexdigest(),
                    tls_json, 60).one.get("Facts")["ServiceStatus"] == "Running"
    clean = _generalize(lab)
    assert "C:\\ProgramData\\docker\\config\\daemon.json: tlsverify, tlscacert, tlscert, tlskey, hosts" in \
        clean.get("Removed")
    daemon = lab.world.storage.read_file(BUILD_DISK, C.DAEMON_JSON[2:])
    assert daemon == b'{"fixed-cidr": "172.30.16.0/20"}'
    g1 = _golden_guest(lab, "g1", 2)
    assert C.daemon_running(lab.world, g1, g1.guest)
    assert lab.world.storage.read_file(g1.hard_drives[0], "\\ProgramData\\docker\\certs.d\\server-key.pem") is None


def test_a_converted_standalone_golden_disk_boots_the_same() -> None:
    lab = ImageHost()
    base = build_base(lab)
    _bootstrapped(lab, base=base)
    _generalize(lab)
    golden = "C:\\LabBases\\ws2022-container.vhdx"
    err = lab.error(("Convert-VHD", {"Path": "C:\\Labs\\nope.vhdx", "DestinationPath": golden}))
    assert err.message == "'C:\\Labs\\nope.vhdx' is not an existing virtual hard disk file."
    lab.ok(("Convert-VHD", {"Path": BUILD_DISK, "DestinationPath": golden, "VHDType": "Dynamic"}))
    (vhd,) = lab.ok(("Get-VHD", {"Path": golden}))
    assert vhd.get("ParentPath") == "" and str(vhd.get("VhdType")) == "Dynamic"
    assert int(vhd.get("FileSize")) > 8_351_903_100  # the base's image and the build VM's changes
    lab.ok(("Remove-Item", {"Path": BUILD_DISK}))
    lab.ok(("New-VHD", {"Path": BUILD_DISK, "ParentPath": golden, "Differencing": True}))  # a guest's child
    lab.world.storage.delete_file(BUILD_DISK, "\\Windows\\Panther\\unattend.xml")
    g1 = _golden_guest(lab, "g1", 2)
    assert C.daemon_running(lab.world, g1, g1.guest) and g1.guest.computer_name == "LAB-G1"
    for what in COUNTERS:
        assert lab.world.counters.guest("g1", what) == 0
