"""Helpers for the integration tests: lab copies, the CLI runner, a simulator served in-process."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from clirun import labctl
from hostview import inventory, shape

from hvsim.server import Simulator
from labctl.lab import sim_state_dir
from labctl.resources import resource_dir
from labctl.secret import Secret
from labctl.transport.base import Invocation, Pipeline
from labctl.transport.psrp import Endpoint, PsrpTransport

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Lab:
    """A lab file copied into a temporary directory."""

    dir: Path
    file: Path
    name: str

    @property
    def sim_state(self) -> Path:
        return sim_state_dir(self.file, self.name)

    @property
    def state(self) -> Path:
        return self.sim_state.parent


def make_lab(tmp_path: Path, source: str = "quickstart.yaml", text: str | None = None) -> Lab:
    labs = tmp_path / "labs"
    labs.mkdir(parents=True, exist_ok=True)
    body = text if text is not None else (resource_dir("labs") / source).read_text()
    path = labs / Path(source).name
    path.write_text(body)
    name = next(line.split(":", 1)[1].strip() for line in body.splitlines() if line.startswith("name:"))
    return Lab(tmp_path, path, name)


@pytest.fixture
def quickstart(tmp_path: Path) -> Lab:
    return make_lab(tmp_path)


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run the labctl CLI in this process (exceptions propagate as exit codes, as for a user)."""
    return labctl(*args, env=env)


class ServedSim:
    """A simulator serving a lab's state in the test process, as `labctl sim serve` would.

    labctl commands run meanwhile find the state in use and connect to it over WinRM, so the test
    can inject faults and read counters while they run.
    """

    def __init__(self, state_dir: Path, **kwargs: Any) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(state_dir / "serve.lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        self.sim = Simulator(state_dir, **kwargs).start()
        ep = self.sim.endpoint()
        self.transport = PsrpTransport(Endpoint(
            uri=ep["https_uri"], auth="ntlm", username=ep["username"], password=Secret(ep["password"]),
            fingerprint=ep["fingerprint"]), size=2)

    def invoke(self, *invocations: Invocation) -> list[Any]:
        return self.transport.invoke(Pipeline.of(*invocations)).output

    def exists(self, path: str) -> bool:
        """Test-Path on the host."""
        return self.invoke(Invocation("Test-Path", {"Path": path})) == [True]

    def inventory(self) -> dict[str, list[str]]:
        """What a person would compare (hostview.inventory)."""
        return inventory(self.transport)

    def shape(self) -> dict[str, list[str]]:
        """The inventory without what differs between two identical runs (VM ids, the lab id in paths)."""
        return shape(self.inventory())

    def remote_lab(self, source: str = "quickstart.yaml", name: str | None = None,
                   host_password_env: str = "LABCTL_TEST_HOST_PASSWORD",
                   guest_password_env: str = "LABCTL_GUEST_PASSWORD") -> str:
        """A shipped lab's text aimed at this simulator as a remote host (uri, NTLM, pinned certificate)."""
        ep = self.sim.endpoint()
        text = (resource_dir("labs") / source).read_text()
        if name is not None:
            text = re.sub(r"^name: .*$", f"name: {name}", text, count=1, flags=re.MULTILINE)
        return text.replace("host: sim", (
            "host:\n"
            f"  uri: {ep['https_uri']}\n"
            "  auth: ntlm\n"
            f"  username: '{ep['username']}'\n"
            f"  password_env: {host_password_env}\n"
            f"  fingerprint: 'sha256:{ep['fingerprint']}'\n")) + f"guest_password_env: {guest_password_env}\n"

    @property
    def password(self) -> str:
        return str(self.sim.endpoint()["password"])

    def close(self) -> None:
        self.transport.close()
        self.sim.stop()
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)


@pytest.fixture
def served(quickstart: Lab) -> Iterator[ServedSim]:
    s = ServedSim(quickstart.sim_state)
    yield s
    s.close()


@pytest.fixture
def bare(quickstart: Lab) -> Iterator[ServedSim]:
    """The quickstart's simulated host without base disks (the evaluation ISOs are in C:\\ISO)."""
    s = ServedSim(quickstart.sim_state, host_config={"base_disks": False})
    yield s
    s.close()


def copy_templates(lab: Lab) -> Path:
    """A templates/ directory beside the lab's labs/ folder, so a test can add its own."""
    dest = lab.dir / "templates"
    shutil.copytree(resource_dir("templates"), dest, dirs_exist_ok=True)
    return dest


# -- the quickstart over another transport (tests/integration/test_transport_*.py) ------------------------------

TRANSPORT_GUEST_PASSWORD = "Gu3st-Passw0rd!"


def quickstart_on(tmp_path: Path, host_yaml: str) -> Lab:
    """The quickstart lab with ``host:`` replaced by ``host_yaml`` (indented lines) and the guests' password from
    LABCTL_GUEST_PASSWORD (a remote host's lab names its secrets' sources)."""
    text = (resource_dir("labs") / "quickstart.yaml").read_text()
    text = text.replace("host: sim", "host:\n" + host_yaml.rstrip("\n") + "\n")
    return make_lab(tmp_path, "quickstart.yaml", text + "guest_password_env: LABCTL_GUEST_PASSWORD\n")


def quickstart_round_trip(lab: Lab, served: ServedSim, env: dict[str, str]) -> None:
    """up, status, up again, destroy of the quickstart as a user runs them, and the host as it was before."""
    env = {"LABCTL_GUEST_PASSWORD": TRANSPORT_GUEST_PASSWORD, **env}
    before = served.inventory()
    up = run("up", str(lab.file), env=env)
    assert up.exit_code == 0, up.output
    assert "2 VM(s) added" in up.output and "SIMULATED" in up.output
    status = run("status", str(lab.file), "--json", env=env)
    assert status.exit_code == 0, status.output
    data = json.loads(status.output)
    assert data["simulated"] is True
    vms = {v["name"]: v for v in data["vms"]}
    assert set(vms) == {"qs-dc01", "qs-node01"}
    for vm in vms.values():
        assert vm["state"] == "Running" and vm["expected_ip"] in vm["ips"], vm
        assert all(vm["checks"].values()), vm["checks"]
        assert vm["containers"]["docker_version"], vm  # the container-host bootstrap ran over this transport
    again = run("up", str(lab.file), env=env)
    assert again.exit_code == 0 and "Nothing to do" in again.output, again.output
    gone = run("destroy", str(lab.file), "--yes", env=env)
    assert gone.exit_code == 0, gone.output
    assert "switch qs-lab" in gone.output
    assert served.inventory() == before
