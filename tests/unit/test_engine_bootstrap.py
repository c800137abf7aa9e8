"""The container-host bootstrap against a scripted fake host: invocations, daemon.json, sharing, resuming."""

from __future__ import annotations

import hashlib
import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from labctl.docker.release import ZipSource
from labctl.engine import bootstrap as boot
from labctl.engine import context as stage_context
from labctl.engine.apply import Applier, ApplyOptions
from labctl.engine.bootstrap import BootstrapContext, daemon_json, image_tar_name
from labctl.engine.journal import Journal
from labctl.engine.plan import DesiredLab, DesiredVm, Plan
from labctl.engine.stages import BOOTSTRAP_STAGES, BY_NAME, Timeouts
from labctl.errors import RemoteCommandError, StageError
from labctl.guest.steps import GuestStep
from labctl.hyperv import ops
from labctl.hyperv.facts import Ownership
from labctl.secret import Secret, Sensitive
from labctl.transport.base import (
    Cancel,
    Credential,
    Invocation,
    Pipeline,
    RemoteError,
    RemoteObject,
    Result,
    RetryPolicy,
    ScriptBlock,
)

NANO = "mcr.microsoft.com/windows/nanoserver:ltsc2022"
ROOT = "C:\\VHD\\labctl\\lab-abc"
ZIP = b"PK" + b"z" * (ops.UPLOAD_CHUNK + 10)  # two chunks
SHA = hashlib.sha256(ZIP).hexdigest()


def _vm(name: str, index: int, **kw: Any) -> DesiredVm:
    return DesiredVm(name=name, image="ws2022-core", base_disk="C:\\b.vhdx", build=20348, processors=2,
                     memory=4 * 1024**3, mac="00-15-5D-00-00-0" + str(index), ip=f"10.1.0.{10 + index}",
                     prefix_length=24, roles=("container-host",), container_images=(NANO,), index=index, **kw)


VM_TYPE = "Microsoft.HyperV.PowerShell.VirtualMachine"
ADAPTER_TYPE = "Microsoft.HyperV.PowerShell.VMNetworkAdapter"


def _obj(**props: Any) -> RemoteObject:
    return RemoteObject(["System.Management.Automation.PSCustomObject"], props)


class FakeHost:
    """Answers the invocations the bootstrap sends, like the simulator would, and records them."""

    def __init__(self, names: list[str]) -> None:
        self.lock = threading.Lock()
        self.calls: list[Invocation] = []
        self.files: dict[str, bytes] = {}
        self.guests: dict[str, dict[str, Any]] = {n: {"features": set(), "pending": set(), "images": set(),
                                                      "files": set()} for n in names}
        self.steps: list[tuple[str, str]] = []
        self.mappings: list[dict[str, Any]] = []
        self.no_virtualization: set[str] = set()
        self.cancel = Cancel()
        self.policy = RetryPolicy()

    def invoke(self, pipeline: Pipeline | Invocation, *, input: Any = None, retry: bool = True) -> Result:
        calls = [pipeline] if isinstance(pipeline, Invocation) else [i for s in pipeline.statements for i in s]
        out: list[Any] = []
        errors: list[RemoteError] = []
        for call in calls:
            with self.lock:
                self.calls.append(call)
            param = "VMName" if call.command == "Invoke-Command" else "Name"
            many = call.command in ("Invoke-Command", "Stop-VM", "Start-VM", "Copy-VMFile") \
                and isinstance(call.parameters.get(param), list)
            if not many:
                out += self._one(call)
                continue
            # Invoke-Command -VMName a,b,c (Stop-VM -Name a,b,...): each VM's objects carry PSComputerName; a VM's
            # failure is a non-terminating error about it, the others go on (as the simulator and Windows do).
            for vm in call.parameters[param]:
                one = Invocation(call.command, {**call.parameters, param: vm})
                try:
                    objs = self._one(one)
                except RemoteCommandError as err:
                    errors.append(RemoteError(err.message, err.fqid, target=vm))
                    continue
                for obj in objs:
                    obj.props["PSComputerName"] = vm
                out += objs
        return Result(out, errors)

    def _one(self, call: Invocation) -> list[Any]:
        p = call.parameters
        cmd = call.command
        if cmd == "Select-Object":  # `Get-VM ... | Select-Object <properties>`: the source's objects stand
            return []
        if cmd == "Test-Path":
            return [p["Path"] in self.files]
        if cmd == "Get-FileHash":
            return [_obj(Algorithm="SHA256", Hash=hashlib.sha256(self.files[p["Path"]]).hexdigest().upper())]
        if cmd == "Set-Content":
            self.files[p["Path"]] = bytes(p["Value"])
            return []
        if cmd == "Add-Content":
            self.files[p["Path"]] += bytes(p["Value"])
            return []
        if cmd == "New-Item":
            return []
        if cmd == "Copy-VMFile":
            assert p["FileSource"] == "Host" and p["SourcePath"] in self.files
            self.guests[p["Name"]]["files"].add(p["DestinationPath"])
            return []
        if cmd == "Stop-VM":  # a shutdown through the guest finishes a pending feature install
            g = self.guests[p["Name"]]
            assert "TurnOff" not in p
            g["features"] |= g["pending"]
            g["pending"] = set()
            g["off"] = True
            return []
        if cmd == "Start-VM":
            self.guests[p["Name"]]["off"] = False
            return []
        if cmd == "Restart-VM":  # a reset: the pending install is rolled back (as the simulator models it)
            self.guests[p["Name"]]["pending"] = set()
            return []
        if cmd == "Get-VM":  # -Name takes one name or several, as the cmdlet does
            names = p["Name"] if isinstance(p["Name"], list) else [p["Name"]]
            return [RemoteObject([VM_TYPE], {"Name": n, "Id": f"id-{n}", "State": "Off" if self.guests[n].get("off")
                                             else "Running", "Heartbeat": "OkApplicationsHealthy", "Path": ROOT})
                    for n in names]
        if cmd == "Get-VMNetworkAdapter":
            names = p["VMName"] if isinstance(p["VMName"], list) else [p["VMName"]]
            return [RemoteObject([ADAPTER_TYPE], {"VMName": n, "VMId": f"id-{n}",
                                                  "IPAddresses": [f"10.1.0.{10 + int(n[-1])}"]}) for n in names]
        if cmd == "Get-NetNatStaticMapping":
            return [_obj(**m) for m in self.mappings]
        if cmd == "Add-NetNatStaticMapping":
            self.mappings.append({k: p[k] for k in ("ExternalPort", "InternalIPAddress", "InternalPort", "Protocol")})
            return []
        if cmd == "Invoke-Command":
            return self._step(call)
        raise AssertionError(f"unexpected {call.describe()}")

    def _step(self, call: Invocation) -> list[Any]:
        p = call.parameters
        name = p["ScriptBlock"].text.split()[2]
        args = list(p.get("ArgumentList") or [])
        if "VMName" not in p:  # host step
            assert name == "copy-from-guest"
            vm, cred, src, dst = args
            assert isinstance(cred, Credential) and src in self.guests[vm]["files"]
            self.files[dst] = b"tar of " + src.encode()
            self.steps.append(("host", name))
            return []
        vm = p["VMName"]
        g = self.guests[vm]
        with self.lock:
            self.steps.append((vm, name))
        if name == "probe":
            return [_obj(ComputerName=vm)]
        if name == "container-features":
            wanted = set(args[0])
            if "Hyper-V" in wanted and vm in self.no_virtualization:
                raise RemoteCommandError(
                    "A prerequisite check for the Hyper-V feature failed.\n1. Hyper-V cannot be installed: The "
                    "processor does not have required virtualization capabilities.", command="Invoke-Command",
                    fqid="Alteration_PrerequisiteCheck_Failed,Microsoft.Windows.ServerManager.Commands."
                         "AddWindowsFeatureCommand")
            new = wanted - g["features"] - g["pending"]
            g["pending"] |= new
            return [_obj(Step=name, Changed=bool(new), RebootNeeded=bool(g["pending"]),
                         Facts={"Installed": sorted(g["features"]), "Pending": sorted(g["pending"])})]
        if name == "docker-tls":
            assert isinstance(args[2], Sensitive) and "PRIVATE KEY" in args[2]
            g["tls"] = True
            return [_obj(Step=name, Changed=True, RebootNeeded=False, Facts={"CertDir": "x"})]
        if name == "docker-install":
            zip_path, sha, config, _timeout = args
            assert zip_path in g["files"] and sha == SHA
            g["daemon"] = json.loads(config)
            return [_obj(Step=name, Changed=True, RebootNeeded=False,
                         Facts={"ClientVersion": "27.3.1", "ServerVersion": "27.3.1", "ServiceStatus": "Running",
                                "NatSubnet": g["daemon"]["fixed-cidr"]})]
        if name == "image-pull":
            g["images"] |= set(args[0])
            return [_obj(Step=name, Changed=True, RebootNeeded=False, Facts={"Images": [
                {"Name": i, "Id": "sha256:1", "Size": 1, "OsVersion": "10.0.20348.2762"} for i in args[0]]})]
        if name == "image-save":
            g["files"].add(args[1])
            return [_obj(Step=name, Changed=True, RebootNeeded=False, Facts={"Path": args[1], "Size": 1})]
        if name == "image-load":
            assert args[1] in g["files"]
            g["images"].add(args[0])
            return [_obj(Step=name, Changed=True, RebootNeeded=False, Facts={"Id": "sha256:1"})]
        if name == "verify-isolation":
            hyperv = "Hyper-V" in g["features"]
            return [_obj(Step=name, Changed=False, RebootNeeded=False, Facts={
                "Process": {"Ok": args[0] in g["images"], "Output": "Microsoft Windows [Version 10.0.20348]",
                            "Error": None, "Seconds": 1.5},
                "HyperV": {"Ok": hyperv, "Output": "", "Error": None if hyperv else "0xc0370102", "Seconds": 4}})]
        raise AssertionError(f"unexpected step {name}")


@pytest.fixture(autouse=True)
def fake_scripts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every step as a one-line script carrying its header (the shipped scripts are tested elsewhere)."""
    def load(name: str, templates: Any = None, kind: str = "guest") -> GuestStep:
        header = "labctl-host-step" if kind == "host" else "labctl-step"
        return GuestStep(name, 1, f"# {header}: {name} 1\n", Path(f"{name}.ps1"), kind)

    monkeypatch.setattr(stage_context, "load_step", load)
    monkeypatch.setattr(boot, "load_host_step", lambda name: load(name, kind="host"))


def _applier(tmp_path: Path, vms: list[DesiredVm], host: FakeHost, *, nat: bool = True) -> Applier:
    lab = DesiredLab(name="lab", switch="lab", subnet="10.1.0.0/24", gateway="10.1.0.1", nat=nat,
                     nat_name="labctl-lab", vms=tuple(vms))
    local = tmp_path / "docker-27.3.1.zip"
    local.write_bytes(ZIP)
    ctx = BootstrapContext(zip_source=ZipSource(version="27.3.1", path=local, sha256=SHA),
                           pki_dir=tmp_path / "state" / "docker", simulated=True, cache_dir=tmp_path / "cache")
    journal = Journal.open(tmp_path / "state" / "journal.json", "lab")
    return Applier(host, lab, Plan(disk_root=ROOT), journal, Ownership("lab", journal.lab_id),
                   lambda vm: "", lambda vm: Credential("Administrator", Secret("pw")),
                   options=ApplyOptions(timeouts=Timeouts(scale=0.001), poll_min=0.001), bootstrap=ctx)


def _run(a: Applier, vm: DesiredVm) -> None:
    assert a.bootstrap is not None
    for stage in BOOTSTRAP_STAGES:
        getattr(a.bootstrap, BY_NAME[stage].fn)(vm)


def test_daemon_json() -> None:
    plain = json.loads(daemon_json(fixed_cidr="172.20.0.0/16", tls=False))
    assert plain == {"hosts": ["npipe://"], "fixed-cidr": "172.20.0.0/16", "data-root": "C:\\ProgramData\\docker"}
    tls = json.loads(daemon_json(fixed_cidr="172.20.0.0/16", tls=True, isolation="hyperv"))
    assert tls["hosts"] == ["npipe://", "tcp://0.0.0.0:2376"] and tls["tlsverify"] is True
    assert tls["tlscacert"] == "C:\\ProgramData\\docker\\certs.d\\ca.pem"
    assert tls["tlscert"].endswith("server-cert.pem") and tls["tlskey"].endswith("server-key.pem")
    assert tls["exec-opts"] == ["isolation=hyperv"]


def test_image_tar_name() -> None:
    assert image_tar_name(NANO) == "nanoserver-ltsc2022.tar"
    assert image_tar_name("mcr.microsoft.com/windows/servercore:ltsc2019") == "servercore-ltsc2019.tar"


def test_upload_is_chunked_byte_arrays() -> None:
    chunk = ops.UPLOAD_CHUNK
    calls = [ops.upload_chunk("C:\\x\\d.zip", ZIP[at:at + chunk], first=at == 0) for at in range(0, len(ZIP), chunk)]
    assert [c.command for c in calls] == ["Set-Content", "Add-Content"]
    assert all(c.parameters["Encoding"] == "Byte" and isinstance(c.parameters["Value"], bytes) for c in calls)
    assert b"".join(c.parameters["Value"] for c in calls) == ZIP
    assert len(calls[0].parameters["Value"]) == ops.UPLOAD_CHUNK
    assert f"<{ops.UPLOAD_CHUNK} bytes>" in calls[0].describe()  # never a megabyte in a log line


def test_one_container_host_end_to_end(tmp_path: Path) -> None:
    vm = _vm("vm0", 0)
    host = FakeHost(["vm0"])
    a = _applier(tmp_path, [vm], host)
    _run(a, vm)
    g = host.guests["vm0"]
    assert g["features"] == {"Containers", "Hyper-V"}  # a reboot finished the install
    commands = [c.command for c in host.calls]
    assert commands.count("Restart-VM") == 0 and commands.count("Stop-VM") == 1  # a guest shutdown, not a reset
    shutdown = next(c for c in host.calls if c.command == "Stop-VM")
    assert shutdown.parameters == {"Name": ["vm0"], "Force": ops.SWITCH}  # Stop-VM -Name takes several VMs
    assert host.files[f"{ROOT}\\docker-27.3.1.zip"] == ZIP
    copy = next(c for c in host.calls if c.command == "Copy-VMFile")
    assert copy.parameters["DestinationPath"] == "C:\\labctl\\docker-27.3.1.zip"
    assert g["daemon"]["fixed-cidr"] == "172.20.0.0/16" and "exec-opts" not in g["daemon"]
    assert g["images"] == {NANO}
    names = [n for v, n in host.steps if v == "vm0"]
    assert "image-save" not in names  # the only guest needing the image keeps no copy on the host
    entry = a.journal.vm("vm0")
    assert entry["stages"] == ["features", "docker", "images", "verify"]
    assert entry["features"] == ["Containers", "Hyper-V"]
    assert entry["verify"]["process"]["ok"] and entry["verify"]["hyperv"]["ok"]
    assert entry["docker"]["server_version"] == "27.3.1"
    # Everything done: a second run sends nothing.
    before = len(host.calls)
    _run(a, vm)
    assert len(host.calls) == before


def test_zip_already_on_the_host_is_not_uploaded_again(tmp_path: Path) -> None:
    vm = _vm("vm0", 0)
    host = FakeHost(["vm0"])
    host.files[f"{ROOT}\\docker-27.3.1.zip"] = ZIP
    a = _applier(tmp_path, [vm], host)
    _run(a, vm)
    assert not any(c.command in ("Set-Content", "Add-Content") for c in host.calls)


def test_four_guests_pull_each_image_once_and_share_it(tmp_path: Path) -> None:
    vms = [_vm(f"vm{i}", i) for i in range(4)]
    host = FakeHost([v.name for v in vms])
    a = _applier(tmp_path, vms, host)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda v: _run(a, v), vms))
    pulls = [v for v, n in host.steps if n == "image-pull"]
    loads = [v for v, n in host.steps if n == "image-load"]
    assert len(pulls) == 1 and sorted(pulls + loads) == [v.name for v in vms]
    assert [n for _, n in host.steps].count("copy-from-guest") == 1
    uploads = [c for c in host.calls if c.command == "Set-Content"]
    assert len(uploads) == 1  # the zip went to the host once for the lab
    shared = a.journal.host_resource("images")
    assert shared is not None and shared[NANO]["path"] == f"{ROOT}\\images\\nanoserver-ltsc2022.tar"
    assert all(host.guests[v.name]["images"] == {NANO} for v in vms)


def test_a_rerun_after_a_kill_does_not_pull_again(tmp_path: Path) -> None:
    vms = [_vm("vm0", 0), _vm("vm1", 1)]
    host = FakeHost(["vm0", "vm1"])
    a = _applier(tmp_path, vms, host)
    _run(a, vms[0])  # vm0 pulled and exported; then the run was killed before vm1 got there
    again = _applier(tmp_path, vms, host)
    _run(again, vms[1])
    assert [n for _, n in host.steps].count("image-pull") == 1
    assert ("vm1", "image-load") in host.steps


def test_docker_tls_certificates_and_nat_mapping(tmp_path: Path) -> None:
    vm = _vm("vm3", 3, docker_tls=True)
    host = FakeHost(["vm3"])
    a = _applier(tmp_path, [vm], host)
    _run(a, vm)
    assert host.guests["vm3"]["tls"] and host.guests["vm3"]["daemon"]["tlsverify"] is True
    assert host.mappings == [{"ExternalPort": 23763, "InternalIPAddress": "10.1.0.13", "InternalPort": 2376,
                              "Protocol": "TCP"}]
    add = next(c for c in host.calls if c.command == "Add-NetNatStaticMapping")
    assert add.parameters["ExternalIPAddress"] == "0.0.0.0/24" and add.parameters["NatName"] == "labctl-lab"
    tls = a.journal.vm("vm3")["docker_tls"]
    assert tls["host"] == "127.0.0.1" and tls["port"] == 23763
    assert (Path(tls["cert_path"]) / "cert.pem").is_file()
    journal_text = (tmp_path / "state" / "journal.json").read_text()
    assert "PRIVATE KEY" not in journal_text
    # The key went as an argument only, and no description of a call shows it.
    assert all("PRIVATE KEY" not in c.describe() for c in host.calls)


def test_missing_virtualization_extensions_fail_at_features(tmp_path: Path) -> None:
    vm = _vm("vm0", 0, isolation="hyperv")
    host = FakeHost(["vm0"])
    host.no_virtualization.add("vm0")
    a = _applier(tmp_path, [vm], host)
    with pytest.raises(StageError) as info:
        _run(a, vm)
    err = info.value
    assert err.stage == "features" and err.vm == "vm0"
    assert "processor does not have required virtualization capabilities" in err.message
    assert err.cause is not None and "does not expose virtualization extensions" in err.cause
    assert not a.journal.has_stage("vm0", "features")


def test_process_only_vm_without_nesting_installs_containers_only(tmp_path: Path) -> None:
    vm = _vm("vm0", 0, nested=False)
    host = FakeHost(["vm0"])
    a = _applier(tmp_path, [vm], host)
    _run(a, vm)  # the Hyper-V isolation run fails, but only process isolation is judged
    entry = a.journal.vm("vm0")
    assert entry["features"] == ["Containers"]
    assert entry["verify"]["hyperv"]["ok"] is False and "verify" in entry["stages"]


def test_hyperv_isolation_failure_fails_a_hyperv_lab(tmp_path: Path) -> None:
    vm = _vm("vm0", 0, isolation="hyperv")
    host = FakeHost(["vm0"])
    a = _applier(tmp_path, [vm], host)
    assert a.bootstrap is not None
    a.bootstrap.features(vm)
    host.guests["vm0"]["features"].discard("Hyper-V")  # e.g. removed by hand
    a.bootstrap.docker(vm)
    a.bootstrap.images(vm)
    with pytest.raises(StageError) as info:
        a.bootstrap.verify(vm)
    assert info.value.stage == "verify" and "0xc0370102" in info.value.message
    assert host.guests["vm0"]["daemon"]["exec-opts"] == ["isolation=hyperv"]


def test_sharers_wait_for_the_first_pull(tmp_path: Path) -> None:
    vms = [_vm("vm0", 0), _vm("vm1", 1)]
    host = FakeHost(["vm0", "vm1"])
    a = _applier(tmp_path, vms, host)
    assert a.bootstrap is not None
    for v in vms:
        a.bootstrap.features(v)
        a.bootstrap.docker(v)
    a.bootstrap.images(vms[1])
    a.bootstrap.images(vms[0])
    assert ("vm1", "image-pull") in host.steps and ("vm0", "image-load") in host.steps
    assert ("vm0", "image-pull") not in host.steps


def test_script_block_is_sent_with_arguments(tmp_path: Path) -> None:
    vm = _vm("vm0", 0)
    host = FakeHost(["vm0"])
    a = _applier(tmp_path, [vm], host)
    assert a.bootstrap is not None
    a.bootstrap.features(vm)
    call = next(c for c in host.calls if c.command == "Invoke-Command")
    assert isinstance(call.parameters["ScriptBlock"], ScriptBlock)
    assert call.parameters["ArgumentList"] == [["Containers", "Hyper-V"]]


def test_status_parses_docker_version_and_images() -> None:
    from labctl.engine.status import parse_images, parse_server_version

    version = ["Client:", " Version:           27.3.1", " API version:       1.47", "",
               "Server: Docker Engine - Community", " Engine:", "  Version:          27.3.1",
               "  API version:      1.47 (minimum version 1.24)"]
    assert parse_server_version(version) == "27.3.1"
    assert parse_server_version([*version[:3], "error during connect: open //./pipe/docker_engine"]) is None
    images = ["REPOSITORY                             TAG        IMAGE ID       CREATED       SIZE",
              "mcr.microsoft.com/windows/nanoserver   ltsc2022   3f1d6f5f5c1a   3 weeks ago   297MB"]
    assert parse_images(images) == [NANO]


def test_a_real_host_needs_the_zips_sha256(tmp_path: Path) -> None:
    from labctl.app.up import docker_refusals
    from labctl.lab import resolve_lab

    text = ("name: real\nhost: {uri: hv01.example.com, username: admin, password_env: HV_PW}\n"
            "network: {subnet: 10.9.0.0/24}\nvms: [{name: r1}]\nguest_password_env: GUEST_PW\n")
    (tmp_path / "real.yaml").write_text(text)
    lab = resolve_lab(tmp_path / "real.yaml")
    assert docker_refusals(lab, simulated=True) == []  # a simulator's mirror publishes its checksum
    refusal = docker_refusals(lab, simulated=False)
    assert len(refusal) == 1 and "docker.sha256 is required for a real host" in refusal[0]
    (tmp_path / "real.yaml").write_text(text + "docker: {sha256: " + "a" * 64 + "}\n")
    assert docker_refusals(resolve_lab(tmp_path / "real.yaml"), simulated=False) == []


def test_an_image_added_later_is_planned_and_fetched(tmp_path: Path) -> None:
    from dataclasses import replace

    from labctl.engine.plan import plan
    from labctl.hyperv.facts import HostFacts, VmFact

    vm = _vm("vm0", 0)
    host = FakeHost(["vm0"])
    a = _applier(tmp_path, [vm], host)
    a.journal.stage_done("vm0", "ready")
    _run(a, vm)
    more = replace(vm, container_images=(NANO, "mcr.microsoft.com/windows/servercore:ltsc2022"))
    owner = a.owner
    facts = HostFacts(computer_name="HV", os_build=26100, cpu_vendor="GenuineIntel", logical_processors=8,
                      memory_capacity=64 * 1024**3, free_memory=60 * 1024**3, vhd_path="C:\\VHD",
                      hyperv_installed=True, free_disk={"C": 500 * 1024**3},
                      vms=[VmFact(name="vm0", id="1", state="Running", heartbeat="OkApplicationsHealthy", status=None,
                                  notes=owner.tag(), memory_startup=4 * 1024**3, dynamic_memory=False,
                                  processor_count=2, generation=2, uptime_seconds=5)])
    lab = replace(a.lab, vms=(more,))
    change = plan(lab, facts, owner, a.journal.snapshot(), base_present={"C:\\b.vhdx": True}).for_vm("vm0")
    assert change is not None and change.action == "change"
    assert change.detail == "add container images: mcr.microsoft.com/windows/servercore:ltsc2022"
    again = _applier(tmp_path, [more], host)
    _run(again, more)
    assert host.guests["vm0"]["images"] == {NANO, "mcr.microsoft.com/windows/servercore:ltsc2022"}


def test_the_stage_table_names_every_stage_method_and_only_those() -> None:
    """Each row's function exists on its phase's class, and every public stage method has a row."""
    from labctl.engine.bootstrap import Bootstrapper
    from labctl.engine.stages import STAGES
    from labctl.engine.vmstages import ReadinessStages

    owner = {"build": ReadinessStages, "ready": ReadinessStages, "bootstrap": Bootstrapper}
    for stage in STAGES:
        assert callable(getattr(owner[stage.phase], stage.fn, None)), stage
    rows = {(owner[s.phase], s.fn) for s in STAGES}
    for cls in (ReadinessStages, Bootstrapper):
        public = {n for n, v in vars(cls).items() if callable(v) and not n.startswith("_")}
        assert public == {fn for c, fn in rows if c is cls}, cls
