"""labctl as its users install it: a wheel in a fresh venv, run from an empty directory outside any checkout.

The wheel must carry everything labctl reads at run time (templates, the image catalog, the schema, the
example labs, the simulator's data), and declare every dependency it imports: the fresh venv gets only
what the wheel's metadata asks for.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.xdist_group("wheel"), pytest.mark.timeout(600)]


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 300, rc: int = 0) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == rc, f"{' '.join(args)} exited {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _source_copy(dest: Path) -> Path:
    """The project's files as a fresh clone has them (tracked and new, nothing ignored: no venv, no state)."""
    listed = _run(["git", "ls-files", "-co", "--exclude-standard", "-z"], REPO).split("\0")
    for rel in filter(None, listed):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wheel")
    src = _source_copy(root / "src")
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(root / "dist"), str(src)], root)
    [built] = (root / "dist").glob("labctl-*.whl")
    return built


def test_the_wheel_carries_what_labctl_reads_at_run_time(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in ("labctl/resources/labs/quickstart.yaml", "labctl/resources/labs/isolation-demo.yaml",
                    "labctl/resources/labs/classroom.yaml", "labctl/resources/images/ws2022-core.yaml",
                    "labctl/resources/schemas/lab.schema.json", "labctl/resources/templates/unattend/default.xml.j2",
                    "labctl/resources/templates/guest/probe.ps1", "labctl/resources/templates/guest/lib/native.ps1",
                    "labctl/resources/templates/host/copy-from-guest.ps1"):
        assert shipped in names, shipped
    for data in ("hvsim/**/durations.yaml", "hvsim/**/catalog/data/hyperv.json"):
        assert any(Path(n).match(data.replace("**/", "*/")) or Path(n).match(data.replace("**/", ""))
                   or Path(n).match(data.replace("**/", "*/*/")) for n in names), data
    assert not any(n.startswith(("tests/", "bench/")) for n in names)


def test_init_up_status_destroy_from_a_fresh_venv_outside_the_checkout(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], tmp_path)
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    _run([str(bindir / "python"), "-m", "pip", "install", "-q", str(wheel)], tmp_path, timeout=480)
    work = tmp_path / "empty"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "LABCTL_"))}
    env["PATH"] = f"{bindir}{os.pathsep}{env.get('PATH', '')}"
    env["LABCTL_CACHE_DIR"] = str(tmp_path / "cache")
    where = _run([str(bindir / "python"), "-c", "import labctl, hvsim; print(labctl.__file__); print(hvsim.__file__)"],
                 work, env)
    assert all(str(venv) in line and str(REPO) not in line for line in where.splitlines())

    labctl = str(bindir / "labctl")
    said = _run([labctl, "init"], work, env)
    assert "created" in said and (work / "labs" / "quickstart.yaml").is_file()
    up = _run([labctl, "up", "labs/quickstart.yaml"], work, env)
    assert "SIMULATED" in up.upper() and "qs-dc01" in up
    status = _run([labctl, "status", "labs/quickstart.yaml", "--json"], work, env)
    assert '"qs-dc01"' in status and '"Running"' in status
    gone = _run([labctl, "destroy", "labs/quickstart.yaml", "--yes"], work, env)
    assert "qs-dc01" in gone
    after = json.loads(_run([labctl, "status", "labs/quickstart.yaml", "--json", "--no-guest"], work, env, rc=1))
    assert [(vm["state"], vm["exists"]) for vm in after["vms"]] == [("Absent", False), ("Absent", False)]
