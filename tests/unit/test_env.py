"""labctl env: the shell lines from the journal's docker_tls record, and clear errors when there is none."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest
from click.testing import Result
from clirun import labctl

from labctl.app.session import journal_path
from labctl.cli.env import env_lines
from labctl.docker.pki import LabPki
from labctl.engine.journal import Journal
from labctl.lab import resolve_lab
from labctl.resources import resource_dir

REPO = Path(__file__).resolve().parents[2]


def _lab(tmp_path: Path, docker_tls: bool) -> Path:
    text = (resource_dir("labs") / "quickstart.yaml").read_text()
    if docker_tls:
        text = text.replace("  roles: [container-host]\n", "  roles: [container-host]\n  docker_tls: true\n")
    folder = tmp_path / "my labs"  # a space: the printed lines must quote paths
    folder.mkdir()
    path = folder / "quickstart.yaml"
    path.write_text(text)
    return path


def _publish(lab_file: Path, vm: str, port: int) -> Path:
    """What the engine's docker stage records after it published the VM's Docker API."""
    lab = resolve_lab(str(lab_file))
    client = LabPki(Path(lab.state_dir) / "docker", lab.name).client_dir()
    Journal.open(journal_path(lab), lab.name).record_vm(
        vm, docker_tls={"host": "127.0.0.1", "port": port, "cert_path": str(client)})
    return client


def _env(*args: str) -> Result:
    return labctl("env", *args)


def test_bash_lines_eval_to_the_docker_environment(tmp_path: Path) -> None:
    lab_file = _lab(tmp_path, docker_tls=True)
    client = _publish(lab_file, "qs-node01", 23761)
    result = _env(str(lab_file), "QS-NODE01")  # Windows names are case-insensitive
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[:3] == ["export DOCKER_HOST=tcp://127.0.0.1:23761", "export DOCKER_TLS_VERIFY=1",
                         f"export DOCKER_CERT_PATH={shlex.quote(str(client))}"]
    assert lines[-1] == f"# eval $(labctl env {shlex.quote(str(lab_file))} qs-node01)"
    # A real shell agrees: eval the output and read the variables back.
    shown = subprocess.run(["bash", "-c", 'eval "$LINES"; printf "%s\\n" "$DOCKER_HOST" "$DOCKER_TLS_VERIFY" '
                            '"$DOCKER_CERT_PATH"'], env={**os.environ, "LINES": result.stdout},
                           capture_output=True, text=True, check=True)
    assert shown.stdout.splitlines() == ["tcp://127.0.0.1:23761", "1", str(client)]


def test_fish_and_powershell_syntax() -> None:
    fish = env_lines("fish", "tcp://h:1", "/a b/it's", "lab.yaml", "vm1")
    assert fish[:3] == ["set -gx DOCKER_HOST 'tcp://h:1';", "set -gx DOCKER_TLS_VERIFY '1';",
                        "set -gx DOCKER_CERT_PATH '/a b/it\\'s';"]
    assert fish[-1] == "# eval (labctl env lab.yaml vm1 --shell fish)"
    ps = env_lines("powershell", "tcp://h:1", "C:\\Users\\o'neil\\certs", "lab.yaml", "vm1")
    assert ps[:3] == ["$Env:DOCKER_HOST = 'tcp://h:1'", "$Env:DOCKER_TLS_VERIFY = '1'",
                      "$Env:DOCKER_CERT_PATH = 'C:\\Users\\o''neil\\certs'"]
    assert ps[-1] == "# & labctl env lab.yaml vm1 --shell powershell | Invoke-Expression"


def test_shell_option_is_passed_through(tmp_path: Path) -> None:
    lab_file = _lab(tmp_path, docker_tls=True)
    _publish(lab_file, "qs-dc01", 23760)
    result = _env(str(lab_file), "qs-dc01", "--shell", "powershell")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("$Env:DOCKER_HOST = 'tcp://127.0.0.1:23760'\n")


@pytest.mark.parametrize(("docker_tls", "expected"), [
    (False, "the lab does not ask for it"),
    (True, "labctl up has not published it"),
])
def test_a_vm_without_docker_tls_is_a_usage_error_with_a_hint(tmp_path: Path, docker_tls: bool,
                                                               expected: str) -> None:
    lab_file = _lab(tmp_path, docker_tls)
    result = _env(str(lab_file), "qs-node01")
    assert result.exit_code == 2
    assert expected in result.stderr and "hint:" in result.stderr
    assert result.stdout == ""  # nothing for eval to run


def test_an_unknown_vm_names_the_labs_vms(tmp_path: Path) -> None:
    result = _env(str(_lab(tmp_path, True)), "nope")
    assert result.exit_code == 2
    assert "no VM named 'nope'" in result.stderr and "qs-dc01" in result.stderr


def test_a_missing_client_directory_says_to_run_up_again(tmp_path: Path) -> None:
    lab_file = _lab(tmp_path, docker_tls=True)
    client = _publish(lab_file, "qs-node01", 23761)
    for name in ("cert.pem", "key.pem", "ca.pem"):
        (client / name).unlink()
    result = _env(str(lab_file), "qs-node01")
    assert result.exit_code == 2 and "run labctl up" in result.stderr
