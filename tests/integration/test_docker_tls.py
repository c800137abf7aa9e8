"""Docker over TLS end to end: a lab with docker_tls, `labctl up`, `eval $(labctl env ...)`, the real docker CLI.

The simulator keeps serving after `up` (ServedSim), as `labctl sim serve` would, so the guests' Docker API
stays reachable on the host ports labctl published (23760 + the VM's index).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from labharness import Lab, ServedSim, make_lab, run

from hvsim.server import Simulator
from labctl.docker.pki import LabPki
from labctl.resources import resource_dir

DOCKER = shutil.which("docker")
BASH = shutil.which("bash")
PORTS = (23760, 23761)  # bootstrap.DOCKER_TLS_HOST_PORT_BASE + each VM's index
VM = "qs-node01"

# The published ports are fixed (23760 + index): every test that publishes them runs in one xdist worker.
pytestmark = [pytest.mark.skipif(DOCKER is None or BASH is None, reason="needs the docker CLI and bash"),
              pytest.mark.xdist_group("docker-tls-ports")]


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        # As the simulator's listener binds: connections of an earlier run in TIME_WAIT do not count.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture(scope="module")
def tls_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Lab, ServedSim]]:
    # The ports are fixed (23760 + index): another labctl run on this machine may hold them for a while.
    deadline = time.monotonic() + 30
    while not all(_port_free(p) for p in PORTS):
        if time.monotonic() > deadline:
            pytest.fail(f"host ports {PORTS} are in use on this machine: stop what holds them "
                        "(another simulator serving a docker_tls lab) and run again")
        time.sleep(0.5)
    text = (resource_dir("labs") / "quickstart.yaml").read_text()
    text = text.replace("  roles: [container-host]\n", "  roles: [container-host]\n  docker_tls: true\n")
    lab = make_lab(tmp_path_factory.mktemp("docker-tls"), text=text)
    served = ServedSim(lab.sim_state)
    try:
        up = run("up", str(lab.file))
        assert up.exit_code == 0, up.output
        yield lab, served
    finally:
        run("destroy", str(lab.file), "--yes")
        served.close()


def _docker_env(lab: Lab, vm: str = VM) -> dict[str, str]:
    """What `eval $(labctl env LAB VM)` leaves in a bash shell (a real bash evaluates the printed lines)."""
    printed = run("env", str(lab.file), vm)
    assert printed.exit_code == 0, printed.output
    assert BASH is not None
    shown = subprocess.run([BASH, "-c", 'eval "$LINES"; env -0'], capture_output=True, check=True,
                           env={"LINES": printed.stdout, "PATH": os.environ.get("PATH", "")})
    env = dict(item.split("=", 1) for item in shown.stdout.decode().split("\0") if "=" in item)
    # A private docker configuration: no user context or credential helper takes part.
    env["HOME"] = str(lab.dir)
    env["DOCKER_CONFIG"] = str(lab.dir / ".docker-config")
    return env


def _docker(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    assert DOCKER is not None
    return subprocess.run([DOCKER, *args], env=env, capture_output=True, text=True, timeout=60)


def test_env_points_docker_at_the_published_port(tls_lab: tuple[Lab, ServedSim]) -> None:
    lab, served = tls_lab
    env = _docker_env(lab)
    assert env["DOCKER_HOST"] == f"tcp://127.0.0.1:{PORTS[1]}"
    assert env["DOCKER_TLS_VERIFY"] == "1"
    cert_path = Path(env["DOCKER_CERT_PATH"])
    assert sorted(p.name for p in cert_path.iterdir()) == ["ca.pem", "cert.pem", "key.pem"]
    assert (cert_path / "key.pem").stat().st_mode & 0o077 == 0
    assert served.sim.docker_api is not None
    assert served.sim.docker_api.ports == {PORTS[0]: "qs-dc01", PORTS[1]: VM}


def test_real_docker_version_info_and_ps_over_tls(tls_lab: tuple[Lab, ServedSim]) -> None:
    lab, _ = tls_lab
    env = _docker_env(lab)
    version = _docker(env, "version")
    assert version.returncode == 0, version.stderr
    assert f"SIMULATED by labctl, guest {VM}" in version.stdout and "windows/amd64" in version.stdout
    info = _docker(env, "info")
    assert info.returncode == 0, info.stderr
    assert f"Name: {VM}" in info.stdout and "(SIMULATED by labctl)" in info.stdout
    ps = _docker(env, "ps")
    assert ps.returncode == 0, ps.stderr
    assert ps.stdout.startswith("CONTAINER ID")
    images = _docker(env, "images")
    assert images.returncode == 0, images.stderr
    assert "nanoserver" in images.stdout  # the lab's base image, pulled by up


def test_the_tls_api_and_labctl_docker_see_the_same_engine(tls_lab: tuple[Lab, ServedSim]) -> None:
    lab, _ = tls_lab
    made = run("docker", str(lab.file), VM, "--", "run", "--name", "over-tls",
               "mcr.microsoft.com/windows/nanoserver:ltsc2022", "cmd", "/c", "echo hi")
    assert made.exit_code == 0, made.output
    ps_all = _docker(_docker_env(lab), "ps", "-a", "--format", "{{.Names}}")
    assert ps_all.returncode == 0, ps_all.stderr
    assert "over-tls" in ps_all.stdout.split()


def test_each_vm_has_its_own_daemon(tls_lab: tuple[Lab, ServedSim]) -> None:
    lab, _ = tls_lab
    info = _docker(_docker_env(lab, "qs-dc01"), "info", "--format", "{{.Name}}")
    assert info.returncode == 0, info.stderr
    assert info.stdout.strip() == "qs-dc01"


def test_a_client_without_the_labctl_certificate_is_refused(tls_lab: tuple[Lab, ServedSim], tmp_path: Path) -> None:
    lab, _ = tls_lab
    env = _docker_env(lab)
    only_ca = tmp_path / "only-ca"
    only_ca.mkdir()
    shutil.copy(Path(env["DOCKER_CERT_PATH"]) / "ca.pem", only_ca / "ca.pem")
    no_cert = _docker({**env, "DOCKER_CERT_PATH": str(only_ca)}, "ps")
    assert no_cert.returncode != 0
    assert "certificate required" in no_cert.stderr, no_cert.stderr

    stranger = LabPki(tmp_path / "other" / "docker", "other").client_dir()
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(only_ca / "ca.pem", mixed / "ca.pem")  # trusts the lab's daemon, presents another CA's cert
    shutil.copy(stranger / "cert.pem", mixed / "cert.pem")
    shutil.copy(stranger / "key.pem", mixed / "key.pem")
    foreign = _docker({**env, "DOCKER_CERT_PATH": str(mixed)}, "ps")
    assert foreign.returncode != 0
    assert "unknown certificate authority" in foreign.stderr or "bad certificate" in foreign.stderr, foreign.stderr

    plain = _docker({k: v for k, v in env.items() if k not in ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH")}, "ps")
    assert plain.returncode != 0  # plain HTTP to the TLS port gets nothing


def test_up_again_keeps_the_certificates_and_the_journal_has_no_key(tls_lab: tuple[Lab, ServedSim]) -> None:
    lab, _ = tls_lab
    cert_path = Path(_docker_env(lab)["DOCKER_CERT_PATH"])
    before = {p.name: p.read_text() for p in cert_path.iterdir()}
    again = run("up", str(lab.file))
    assert again.exit_code == 0, again.output
    assert {p.name: p.read_text() for p in cert_path.iterdir()} == before
    assert _docker(_docker_env(lab), "version").returncode == 0
    journal = (lab.state / "journal.json").read_text()
    assert "PRIVATE KEY" not in journal and "docker_tls" in journal


def test_up_publishes_each_guests_api_on_its_host_port_and_keeps_the_key_secret(
        tls_lab: tuple[Lab, ServedSim]) -> None:
    import http.client
    import json
    import ssl

    from labctl.engine.journal import Journal
    from labctl.transport.base import Invocation

    lab, served = tls_lab
    mappings = served.transport.invoke(Invocation("Get-NetNatStaticMapping")).objects()
    assert sorted((int(m.get("ExternalPort")), int(m.get("InternalPort"))) for m in mappings) == [
        (23760, 2376), (23761, 2376)]
    entry = Journal.open(lab.state / "journal.json", lab.name).vm(VM)
    tls = entry["docker_tls"]
    assert tls["host"] == "127.0.0.1" and tls["port"] == 23761
    assert {"ca.pem", "cert.pem", "key.pem"} <= {p.name for p in Path(tls["cert_path"]).iterdir()}
    assert "PRIVATE KEY" not in (lab.state / "journal.json").read_text()
    status = json.loads(run("status", str(lab.file), "--json").output)
    node = next(v for v in status["vms"] if v["name"] == VM)
    assert node["healthy"] is True and node["containers"]["docker_tls"]["port"] == 23761
    # A client with the lab's client certificate reaches the guest's daemon through the host port.
    certs = Path(tls["cert_path"])
    ctx = ssl.create_default_context(cafile=str(certs / "ca.pem"))
    ctx.load_cert_chain(certs / "cert.pem", certs / "key.pem")
    deadline = time.monotonic() + 10
    while True:  # the simulator opens the listener once it sees the mapping and the guest's TLS daemon
        try:
            conn = http.client.HTTPSConnection("127.0.0.1", 23761, context=ctx, timeout=10)
            conn.request("GET", "/version")
            answer = conn.getresponse()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    assert answer.status == 200
    assert json.loads(answer.read())["Version"] == "27.3.1"


def test_a_restarted_simulator_serves_the_docker_api_again(tls_lab: tuple[Lab, ServedSim]) -> None:
    """`labctl sim serve` stopped and started again: the listeners come back from the saved host state."""
    lab, served = tls_lab
    served.sim.stop()
    assert _docker(_docker_env(lab), "version").returncode != 0  # the host is down
    served.sim = Simulator(lab.sim_state).start()  # same state directory, as sim serve restarts
    version = _docker(_docker_env(lab), "version")
    assert version.returncode == 0, version.stderr
    assert f"guest {VM}" in version.stdout



def _config_env(lab: Lab) -> dict[str, str]:
    """A shell with the lab's own docker config directory and no DOCKER_* variables."""
    return {"PATH": os.environ.get("PATH", ""), "HOME": str(lab.dir), "DOCKER_CONFIG": str(lab.dir / ".ctx-config")}


def test_env_context_writes_a_docker_context_and_unset_removes_it(tls_lab: tuple[Lab, ServedSim]) -> None:
    lab, _ = tls_lab
    env = _config_env(lab)
    made = run("env", str(lab.file), VM, "--context", env=env)
    assert made.exit_code == 0, made.output
    name = f"labctl-quickstart-{VM}"
    assert f"created docker context {name}" in made.output
    # The real docker CLI reaches the guest's engine through the context, with no DOCKER_* variable set.
    info = _docker(env, "--context", name, "info", "--format", "{{.Name}}")
    assert info.returncode == 0, info.stderr
    assert info.stdout.strip() == VM
    again = run("env", str(lab.file), VM, "--context", env=env)
    assert again.exit_code == 0 and f"updated docker context {name}" in again.output

    assert _docker(env, "context", "use", name).returncode == 0
    gone = run("env", str(lab.file), VM, "--context", "--unset", env=env)
    assert gone.exit_code == 0, gone.output
    assert "it was in use" in gone.output
    listed = _docker(env, "context", "ls", "--format", "{{.Name}}")
    assert name not in listed.stdout.split()
    assert _docker(env, "context", "show").stdout.strip() == "default"
    twice = run("env", str(lab.file), VM, "--context", "--unset", env=env)
    assert twice.exit_code == 0 and "nothing to remove" in twice.output


def test_env_context_leaves_a_users_context_of_the_same_name_alone(tls_lab: tuple[Lab, ServedSim]) -> None:
    lab, _ = tls_lab
    env = _config_env(lab)
    name = "labctl-quickstart-qs-dc01"
    mine = _docker(env, "context", "create", name, "--description", "my own", "--docker", "host=tcp://10.0.0.9:2376")
    assert mine.returncode == 0, mine.stderr
    for args in (("--context",), ("--context", "--unset")):
        res = run("env", str(lab.file), "qs-dc01", *args, env=env)
        assert res.exit_code == 2, res.output
        assert "not made by labctl" in res.output
    kept = _docker(env, "context", "inspect", name, "--format", "{{.Endpoints.docker.Host}}")
    assert kept.stdout.strip() == "tcp://10.0.0.9:2376"


def test_env_unset_prints_lines_that_clear_the_variables(tls_lab: tuple[Lab, ServedSim]) -> None:
    lab, _ = tls_lab
    printed = run("env", str(lab.file), VM, "--unset")
    assert printed.exit_code == 0, printed.output
    script = 'export DOCKER_HOST=x DOCKER_TLS_VERIFY=1 DOCKER_CERT_PATH=y; eval "$LINES"; unset LINES; env'
    shown = subprocess.run([BASH, "-c", script],
                           capture_output=True, text=True, check=True,
                           env={"LINES": printed.stdout, "PATH": os.environ.get("PATH", "")})
    assert "DOCKER_" not in shown.stdout
