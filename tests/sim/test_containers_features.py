"""Windows features and the Docker engine in a simulated guest: refusals with Windows' and Docker's texts,
idempotency, persistence (container-features, docker-install, docker-tls, exec)."""

from __future__ import annotations

import hashlib
import json

from container_lab import DAEMON_JSON, DOCKER_VERSION, NANO_2022, ZIP_PATH, Lab
from guest_world import new_world

from hvsim.docker.models.engine import DockerEngine, docker_engine, simulated_docker_zip
from hvsim.guest.models.guest import Guest

PREREQ = ("A prerequisite check for the Hyper-V feature failed.\n1. Hyper-V cannot be installed: The processor does "
          "not have required virtualization capabilities.")
NO_CONTAINERS = ("failed to start daemon: a required service is not installed, ensure the Containers feature is "
                 "installed: failed to open service hns: The specified service does not exist as an installed service.")


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest().upper()


def test_hyperv_feature_without_virtualization_extensions_is_refused_with_the_prerequisite_error() -> None:
    lab = Lab()
    lab.vm("h1", expose=False)
    res = lab.step("h1", "container-features", ["Containers", "Hyper-V"])
    assert res.outputs == []
    (err,) = res.errors
    assert err.message == PREREQ
    assert err.fqid == ("Alteration_PrerequisiteCheck_Failed,"
                        "Microsoft.Windows.ServerManager.Commands.AddWindowsFeatureCommand")
    # Nothing was installed: the whole Install-WindowsFeature call failed.
    facts = lab.step("h1", "container-features", ["Containers"]).one.get("Facts")
    assert facts == {"Installed": [], "Pending": ["Containers"]}


def test_features_are_pending_until_the_guest_reboots_and_the_step_is_idempotent() -> None:
    lab = Lab()
    lab.vm("h1")
    first = lab.step("h1", "container-features", ["Containers", "Hyper-V"]).one
    assert first.get("Step") == "container-features"
    assert first.type_names[0] == "Deserialized.System.Management.Automation.PSCustomObject"
    assert (first.get("Changed"), first.get("RebootNeeded")) == (True, True)
    assert first.get("Facts") == {"Installed": [], "Pending": ["Containers", "Hyper-V"]}
    again = lab.step("h1", "container-features", ["Containers", "Hyper-V"]).one
    assert (again.get("Changed"), again.get("RebootNeeded")) == (False, True)
    # Docker cannot start while Containers is only pending.
    lab.put_zip("h1")
    data = simulated_docker_zip(DOCKER_VERSION)
    refused = lab.step("h1", "docker-install", ZIP_PATH, _sha(data), DAEMON_JSON, 30)
    assert NO_CONTAINERS in refused.error_text
    lab.reboot("h1")
    done = lab.step("h1", "container-features", ["Containers", "Hyper-V"]).one
    assert (done.get("Changed"), done.get("RebootNeeded")) == (False, False)
    assert done.get("Facts") == {"Installed": ["Containers", "Hyper-V"], "Pending": []}
    modeled = lab.world.clock.report()["modeled_seconds"]["h1"]
    d = lab.world.clock.durations
    assert modeled >= d["install_feature_containers"] + d["install_feature_hyperv"] + d["guest_reboot"]


def test_docker_without_the_containers_feature_does_not_start() -> None:
    lab = Lab()
    lab.vm("h1")
    data = lab.put_zip("h1")
    res = lab.step("h1", "docker-install", ZIP_PATH, _sha(data), DAEMON_JSON, 30)
    assert res.outputs == []
    assert NO_CONTAINERS in res.error_text
    assert "Install the Containers feature" in res.error_text
    engine = docker_engine(lab.world, lab.get_vm("h1"))
    assert engine is not None and engine.running is False
    cli = lab.docker("h1", "version")
    assert cli.get("ExitCode") == 1
    assert "open //./pipe/docker_engine: The system cannot find the file specified." in cli.get("Error")[0]


def test_docker_install_verifies_the_zip_and_is_idempotent() -> None:
    lab = Lab()
    lab.vm("h1")
    lab.step("h1", "container-features", ["Containers"])
    lab.reboot("h1")
    data = lab.put_zip("h1")
    bad = lab.step("h1", "docker-install", ZIP_PATH, "0" * 64, DAEMON_JSON, 30)
    assert "SHA-256 of C:\\labctl\\docker-27.3.1.zip is" in bad.error_text
    missing = lab.step("h1", "docker-install", "C:\\labctl\\docker-99.0.0.zip", _sha(data), DAEMON_JSON, 30)
    assert "Cannot find path 'C:\\labctl\\docker-99.0.0.zip' because it does not exist." in missing.error_text
    first = lab.step("h1", "docker-install", ZIP_PATH, _sha(data), DAEMON_JSON, 30).one
    assert first.get("Changed") is True
    assert first.get("Facts") == {"ClientVersion": DOCKER_VERSION, "ServerVersion": DOCKER_VERSION,
                                  "ServiceStatus": "Running", "NatSubnet": "172.30.16.0/20"}
    second = lab.step("h1", "docker-install", ZIP_PATH, _sha(data), DAEMON_JSON, 30).one
    assert second.get("Changed") is False
    vm = lab.get_vm("h1")
    disk = vm.hard_drives[0]
    assert lab.world.storage.read_file(disk, "\\ProgramData\\docker\\config\\daemon.json") == DAEMON_JSON.encode()
    assert b"SIMULATED dockerd.exe 27.3.1" in (lab.world.storage.read_file(disk, "\\Program Files\\docker\\dockerd.exe")
                                                or b"")


def test_a_zip_without_dockerd_is_refused() -> None:
    import io
    import zipfile

    lab = Lab()
    lab.vm("h1")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("docker/docker.exe", b"x")
    data = lab.put_zip("h1", buf.getvalue())
    res = lab.step("h1", "docker-install", ZIP_PATH, _sha(data), DAEMON_JSON, 30)
    assert "does not contain docker\\dockerd.exe" in res.error_text


def test_the_docker_engine_interface_and_tls() -> None:
    lab = Lab()
    lab.vm("h1")
    pems = ("-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n",
            "-----BEGIN CERTIFICATE-----\nSRV\n-----END CERTIFICATE-----\n",
            "-----BEGIN RSA PRIVATE KEY-----\nKEY\n-----END RSA PRIVATE KEY-----\n")
    tls = lab.step("h1", "docker-tls", *pems).one
    assert tls.get("Changed") is True
    assert tls.get("Facts") == {"CertDir": "C:\\ProgramData\\docker\\certs.d", "FirewallRule": "labctl Docker TLS"}
    assert lab.step("h1", "docker-tls", *pems).one.get("Changed") is False
    daemon = '{"hosts": ["npipe://", "tcp://0.0.0.0:2376"], "tlsverify": true, "exec-opts": ["isolation=hyperv"]}'
    lab.container_host("h1", daemon_json=daemon)
    engine = docker_engine(lab.world, lab.get_vm("h1"))
    assert isinstance(engine, DockerEngine)
    assert (engine.version, engine.api_version, engine.running, engine.os_build, engine.tcp_port) == \
        (DOCKER_VERSION, "1.47", True, 20348, 2376)
    assert engine.tls == pems
    assert engine.firewall_allows_tcp is True
    assert engine.version_info()["ApiVersion"] == "1.47"
    assert engine.version_info()["Os"] == "windows"
    info = engine.info()
    assert info["Isolation"] == "hyperv" and info["OSType"] == "windows" and info["Driver"] == "windowsfilter"
    assert engine.list_containers(all=True) == [] and engine.list_images() == []
    lab.docker("h1", "run", "-d", "--name", "web", NANO_2022, "ping", "-t", "localhost")
    (c,) = engine.list_containers(all=False)
    assert c["Names"] == ["/web"] and c["State"] == "running" and c["HostConfig"]["Isolation"] == "hyperv"
    (img,) = engine.list_images()
    assert img["RepoTags"] == [NANO_2022] and img["Size"] == 297_000_000


def test_tls_without_certificates_keeps_dockerd_down() -> None:
    lab = Lab()
    lab.vm("h1")
    lab.step("h1", "container-features", ["Containers"])
    lab.reboot("h1")
    data = lab.put_zip("h1")
    daemon = '{"hosts": ["npipe://", "tcp://0.0.0.0:2376"], "tlsverify": true}'
    res = lab.step("h1", "docker-install", ZIP_PATH, _sha(data), daemon, 30)
    assert "could not read CA certificate" in res.error_text
    assert "server-key" not in res.error_text  # never a key's content, only the first missing path


def test_unknown_daemon_json_keys_are_refused_like_dockerd() -> None:
    lab = Lab()
    lab.vm("h1")
    lab.step("h1", "container-features", ["Containers"])
    lab.reboot("h1")
    data = lab.put_zip("h1")
    res = lab.step("h1", "docker-install", ZIP_PATH, _sha(data), '{"isolation": "hyperv"}', 30)
    assert "the following directives don't match any configuration option: isolation" in res.error_text


def test_container_state_persists_with_the_guest_and_survives_a_reboot() -> None:
    lab = Lab()
    vm = lab.vm("h1")
    lab.container_host("h1")
    lab.docker("h1", "run", "-d", "--name", "web", NANO_2022, "ping", "-t", "localhost")
    copy = Guest.from_state(vm.guest.to_state())
    assert copy.container_host.to_state() == vm.guest.container_host.to_state()
    lab.reboot("h1")
    ps = lab.docker("h1", "ps", "-a").get("Output")
    assert "Exited (1073807364)" in ps[1]  # a guest shutdown stops its containers
    assert lab.docker("h1", "version").get("ExitCode") == 0  # dockerd starts with the guest


def test_exec_runs_the_modelled_commands_and_refuses_others() -> None:
    lab = Lab()
    lab.vm("h1")
    lab.container_host("h1")
    assert lab.step("h1", "exec", "hostname").outputs == ["LAB-DC01"]
    assert lab.step("h1", "exec", "cmd /c ver").outputs == ["", "Microsoft Windows [Version 10.0.20348.2849]"]
    (svc,) = lab.step("h1", "exec", "Get-Service docker").outputs
    assert svc.get("Name") == "docker" and str(svc.get("Status")) == "Running"
    missing = lab.step("h1", "exec", "Get-Service nosuch")
    assert missing.errors[0].message == "Cannot find any service with service name 'nosuch'."
    assert missing.errors[0].fqid == "NoServiceFoundForGivenName,Microsoft.PowerShell.Commands.GetServiceCommand"
    feats = lab.step("h1", "exec", "Get-WindowsFeature -Name Containers,Hyper-V").outputs
    assert [(f.get("Name"), str(f.get("InstallState"))) for f in feats] == [("Containers", "Installed"),
                                                                           ("Hyper-V", "Installed")]
    out = lab.step("h1", "exec", "docker run --rm mcr.microsoft.com/windows/nanoserver:ltsc2022 cmd /c ver")
    assert out.outputs[-1] == "Microsoft Windows [Version 10.0.20348.2849]"
    assert out.errors[0].message.startswith("Unable to find image")  # docker's stderr: NativeCommandError
    assert out.errors[0].fqid == "NativeCommandError"
    refused = lab.step("h1", "exec", "Get-Disk")
    assert refused.outputs == []
    (err,) = refused.errors
    assert err.message.startswith("The simulated guest does not model this PowerShell command: Get-Disk. labctl exec "
                                  "on the simulator runs docker commands, hostname, Get-Service, Get-WindowsFeature, "
                                  "Install-WindowsFeature and cmd /c ver")
    assert "not modelled by the simulator" in err.message
    assert err.fqid == "CommandNotModelled"


def test_docker_cli_without_docker_installed_is_command_not_found() -> None:
    lab = Lab()
    lab.vm("h1")
    res = lab.step("h1", "docker-cli", ["ps"])
    assert res.errors[0].fqid == "CommandNotFoundException"
    assert res.errors[0].message.startswith("The term 'docker' is not recognized")


def test_exec_refuses_pipelines() -> None:
    lab = Lab()
    lab.vm("h1")
    res = lab.step("h1", "exec", "Get-Service docker | Select-Object Status")
    assert res.errors[0].fqid == "CommandNotModelled"


def test_a_restarted_simulator_keeps_the_container_host() -> None:
    import json

    from guest_world import new_world

    lab = Lab()
    lab.vm("h1")
    lab.container_host("h1")
    lab.docker("h1", "pull", NANO_2022)
    lab.docker("h1", "run", "--name", "once", NANO_2022, "cmd", "/c", "echo hi")
    state = json.loads(json.dumps(lab.world.to_state()))
    again = Lab(new_world())
    again.world.load_state(state)
    engine = docker_engine(again.world, again.get_vm("h1"))
    assert engine is not None and engine.running
    assert [i["RepoTags"] for i in engine.list_images()] == [[NANO_2022]]
    assert again.docker("h1", "logs", "once").get("Output") == ["hi"]


def test_the_realistic_profile_accounts_and_waits_without_holding_the_world() -> None:
    from guest_world import new_world

    lab = Lab(new_world("realistic", speedup=100_000.0))
    lab.vm("h1")
    lab.container_host("h1")
    out = lab.docker("h1", "run", "--rm", NANO_2022, "cmd", "/c", "ver")
    assert out.get("ExitCode") == 0
    seconds = lab.world.clock.report()["modeled_seconds"]["h1"]
    assert seconds > lab.world.clock.durations["image_pull_nanoserver"]


def test_a_reset_with_features_pending_rolls_the_install_back_and_a_shutdown_finishes_it() -> None:
    from hvsim.docker.models.engine import CBS_LOG, MSG_FEATURES_REVERTED

    lab = Lab()
    vm = lab.vm("h1")
    assert lab.step("h1", "container-features", ["Containers", "Hyper-V"]).one.get("RebootNeeded") is True
    # Restart-VM is a reset: the shutdown phase of the feature install never runs, the next boot reverts it.
    lab.reset("h1")
    after = lab.step("h1", "container-features", ["Containers", "Hyper-V"]).one
    assert (after.get("Changed"), after.get("RebootNeeded")) == (True, True)  # installed again from scratch
    log = lab.world.storage.read_file(vm.hard_drives[0], CBS_LOG) or b""
    assert MSG_FEATURES_REVERTED.encode() in log
    # Stop-VM -TurnOff is a power cut: the same.
    lab.world.hv.stop(vm, turn_off=True)
    lab.world.hv.start(vm)
    lab.wait_ready(vm)
    assert lab.step("h1", "container-features", ["Containers", "Hyper-V"]).one.get("Facts")["Installed"] == []
    # A shutdown through the guest (Stop-VM, Stop-VM -Force) finishes the install.
    lab.reboot("h1")
    done = lab.step("h1", "container-features", ["Containers", "Hyper-V"]).one
    assert done.get("Facts") == {"Installed": ["Containers", "Hyper-V"], "Pending": []}


# The on-disk keys of the container host's records: the ones the simulator wrote while they were plain dicts, so a
# state directory saved then loads unchanged.
IMAGE_KEYS = {"id", "tags", "digests", "os_version", "size", "created", "parent", "layers", "config", "family", "apps"}
CONTAINER_KEYS = {"id", "name", "image_ref", "image_id", "os_version", "command", "entrypoint", "cmd", "created",
                  "started", "finished", "state", "exit_code", "isolation", "interactive", "tty", "detach",
                  "stdin_once", "auto_remove", "logs", "env", "ports", "processes", "ip", "hostname", "user", "family",
                  "apps", "paused"}
DOCKER_KEYS = {"version", "zip_sha256", "registered", "status", "error", "config", "started_at", "daemon_json"}


def test_the_persisted_records_keep_the_keys_of_the_dict_era() -> None:
    from hvsim.docker.models.engine import FIREWALL_RULE, ContainerHost, write_tls

    lab = Lab()
    vm = lab.vm("h1")
    lab.container_host("h1")
    write_tls(lab.world, vm, vm.guest, "-----BEGIN CERTIFICATE-----\n", "-----BEGIN CERTIFICATE-----\n",
              "-----BEGIN KEY-----\n")
    lab.docker("h1", "pull", "mcr.microsoft.com/windows/servercore/iis:windowsservercore-ltsc2022")
    lab.docker("h1", "run", "--name", "once", "-e", "A=1", "-p", "8080:80", NANO_2022, "cmd", "/c", "echo hi")
    lab.docker("h1", "commit", "once", "mine:v1")
    state = vm.guest.container_host.to_state()
    assert set(state) == {"features", "firewall_rules", "docker", "images", "containers", "seq", "machine_path"}
    assert all(set(img) == IMAGE_KEYS for img in state["images"].values())
    assert all(set(c) == CONTAINER_KEYS for c in state["containers"].values())
    assert set(state["docker"]) == DOCKER_KEYS
    assert state["firewall_rules"] == {FIREWALL_RULE: {"Direction": "Inbound", "Protocol": "TCP", "LocalPort": "2376",
                                                       "Action": "Allow", "Enabled": True}}
    iis = next(img for img in state["images"].values() if img["tags"][0].endswith(":windowsservercore-ltsc2022"))
    assert iis["config"] == {"Cmd": None, "Entrypoint": ["C:\\ServiceMonitor.exe", "w3svc"], "User": "",
                             "ExposedPorts": ["80/tcp"]}
    assert all(isinstance(layer, list) and len(layer) == 2 for layer in iis["layers"])  # [id, size]
    assert ContainerHost.from_state(state).to_state() == state


def test_records_saved_before_layers_and_configs_were_modelled_load_with_what_the_engine_assumed() -> None:
    lab = Lab()
    lab.vm("h1")
    lab.container_host("h1")
    lab.docker("h1", "pull", NANO_2022)
    state = json.loads(json.dumps(lab.world.to_state()))
    guest = next(v for v in state["vms"] if v["name"] == "h1")["guest"]
    ch = guest["container_host"]
    (image,) = ch["images"].values()
    for key in ("layers", "config", "family", "apps", "parent", "digests"):
        del image[key]
    # A container of that time: no entrypoint/cmd split, no hostname, user, family, apps, pause or stdin_once.
    cid = "ab" * 32
    ch["containers"][cid] = {"id": cid, "name": "old", "image_ref": NANO_2022, "image_id": image["id"],
                             "os_version": image["os_version"], "command": ["cmd", "/c", "echo", "old"],
                             "created": 1.0e9, "started": 1.0e9, "finished": 1.0e9, "state": "exited",
                             "exit_code": 0, "isolation": "process", "interactive": False, "tty": False,
                             "detach": False, "auto_remove": False, "logs": ["old"], "env": [], "ports": [],
                             "processes": [], "ip": ""}
    again = Lab(new_world())
    again.world.load_state(state)
    loaded = again.get_vm("h1").guest.container_host
    img = loaded.images[image["id"]]
    assert [(layer.id, layer.size) for layer in img.layers] == [(image["id"].removeprefix("sha256:"), image["size"])]
    assert img.config.to_state() == {"Cmd": ["c:\\windows\\system32\\cmd.exe"], "Entrypoint": None, "User": ""}
    assert loaded.containers[cid].cmd == ["cmd", "/c", "echo", "old"]  # its command was its CMD
    assert again.docker("h1", "logs", "old").get("Output") == ["old"]
    assert again.docker("h1", "start", "-a", "old").get("Output") == ["old"]
    assert again.docker("h1", "ps", "-a", "-q").get("Output") == [cid[:12]]
    assert again.docker("h1", "commit", "old", "old:v1").get("ExitCode") == 0
    saved = loaded.to_state()
    assert set(saved["images"][image["id"]]) == IMAGE_KEYS and set(saved["containers"][cid]) == CONTAINER_KEYS
    assert again.docker("h1", "rmi", NANO_2022).get("ExitCode") == 1  # still used by the old container
