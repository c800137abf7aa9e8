"""The code stays typed and lint-clean: the same checks a reviewer runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)


def test_ruff_is_clean() -> None:
    # Through this interpreter (ruff is a test extra), so an unactivated venv does not skip it.
    result = _run(sys.executable, "-m", "ruff", "check", "labctl", "tests", "bench")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean() -> None:
    result = _run(sys.executable, "-m", "mypy")
    assert result.returncode == 0, result.stdout + result.stderr


def test_architecture_boundaries() -> None:
    """Only transport imports pypsrp; only cli imports click and rich; the simulator imports no labctl
    outside labctl/sim; the pure core (lab, render, engine/plan) imports neither pypsrp, click nor the sim."""
    offenders: list[str] = []
    for path in (REPO / "labctl").rglob("*.py"):
        rel = path.relative_to(REPO).as_posix()
        text = path.read_text(encoding="utf-8")
        imports = [ln.strip() for ln in text.splitlines() if ln.strip().startswith(("import ", "from "))]

        def uses(mod: str, imports: list[str] = imports) -> bool:
            return any(ln.startswith((f"import {mod}", f"from {mod}")) for ln in imports)

        if uses("pypsrp") and not rel.startswith("labctl/transport/"):
            offenders.append(f"{rel} imports pypsrp")
        if (uses("click") or uses("rich")) and not rel.startswith("labctl/cli/"):
            offenders.append(f"{rel} imports click/rich")
        if rel.startswith("labctl/sim/"):
            outside = [ln for ln in imports if ln.startswith(("from labctl", "import labctl"))
                       and not ln.startswith(("from labctl.sim", "import labctl.sim"))]
            offenders += [f"{rel}: {ln}" for ln in outside]
        if rel.startswith(("labctl/lab/", "labctl/render/", "labctl/engine/plan.py")) and (
                uses("labctl.sim") or uses("pypsrp") or uses("labctl.transport.psrp")):
            offenders.append(f"{rel} is pure core but imports I/O layers")
    assert not offenders, "\n".join(offenders)
