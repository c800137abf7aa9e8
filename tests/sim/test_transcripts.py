"""The simulator against real Windows output: every case of tests/sim/transcripts/ replayed over pypsrp.

Each case is real output someone posted publicly (its ``source`` link and the ``transcript`` as posted): the
command, the state it ran in, and the whole error record (message, FullyQualifiedErrorId, CategoryInfo with its
target and reason) or, for docker, its stderr and exit code. The test builds that state on a fresh simulated
host, runs the command with the real client and compares every field. The format is tests/sim/transcripts/README.md.

Ids docker makes at random (containers) cannot be matched literally: a setup step captures them into variables
(``capture``) that the run and the expectation name (``${cid}``, ``${cid:12}``), and ids the run itself makes are
declared ``fresh``: any id of their form, the same at each use, none of the captured ones.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from container_lab import DOCKER_VERSION, Lab
from guest_world import make_vm
from pypsrp.complex_objects import PSCredential
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.serializer import TaggedValue
from pypsrp.wsman import WSMan
from unattend_samples import PASSWORD

from hvsim.docker.models import engine as C
from hvsim.powershell.errors import CATEGORIES
from hvsim.server import Simulator

# The harness talks to the simulator's self-signed certificate unverified (the test is about answers, not TLS).
pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")

HERE = Path(__file__).resolve().parent / "transcripts"
CASES = sorted(HERE.rglob("*.json"))
STATES = ("host", "guest", "container-host")
DOCKER_STEP = "# labctl-step: docker-cli 1\nparam([string[]] $Arguments)\n& docker @Arguments\n"
CONTAINER_HOST = "ch01"
GUEST = "guest01"


def load(path: Path) -> dict[str, Any]:
    case: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return case


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulator]:
    s = Simulator(tmp_path_factory.mktemp("transcripts")).start()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def pool(sim: Simulator) -> Iterator[RunspacePool]:
    ep = sim.endpoint()
    wsman = WSMan("127.0.0.1", port=sim.https_port, ssl=True, username=ep["username"], password=ep["password"],
                  auth="ntlm", cert_validation=False, no_proxy=True)
    with RunspacePool(wsman) as p:
        p.exchange_keys()
        yield p


def _value(value: Any) -> Any:
    """A case's JSON value as the client sends it ({"$switch": true}, {"$credential": [user, password]}, ...)."""
    if isinstance(value, dict) and len(value) == 1:
        (key, inner), = value.items()
        if key == "$credential":
            return PSCredential(username=inner[0], password=inner[1])
        if key == "$secure":
            return TaggedValue("SS", inner)
        if key == "$scriptblock":
            return TaggedValue("SBK", inner)
        if key == "$int64":
            return TaggedValue("I64", int(inner))
    if isinstance(value, list):
        return [_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _value(v) for k, v in value.items()}
    return value


def _invoke(pool: RunspacePool, call: dict[str, Any]) -> PowerShell:
    ps = PowerShell(pool)
    ps.add_cmdlet(call["cmdlet"])
    for name, value in (call.get("parameters") or {}).items():
        if value == {"$switch": True}:
            ps.add_parameter(name)
        else:
            ps.add_parameter(name, _value(value))
    ps.invoke()
    return ps


def _docker(pool: RunspacePool, argv: list[str]) -> dict[str, Any]:
    ps = _invoke(pool, {"cmdlet": "Invoke-Command", "parameters": {
        "VMName": CONTAINER_HOST, "Credential": {"$credential": ["Administrator", PASSWORD]},
        "ScriptBlock": {"$scriptblock": DOCKER_STEP}, "ArgumentList": [argv]}})
    assert not ps.had_errors and ps.output, [str(e) for e in ps.streams.error]
    obj = ps.output[0]
    props = {**obj.adapted_properties, **obj.extended_properties}

    def lines(value: Any) -> list[str]:
        if value is None:
            return []
        return [str(v) for v in value] if isinstance(value, list) else [str(value)]

    return {"exit_code": int(props["ExitCode"]), "stdout": lines(props.get("Output")),
            "stderr": lines(props.get("Error"))}


def _prepare(sim: Simulator, state: str, host: dict[str, Any] | None = None,
             docker_version: str = DOCKER_VERSION) -> None:
    assert sim.world is not None
    with sim.world.lock:
        sim.world.reset(host or {})
    if state == "guest":
        vm = make_vm(sim.world, GUEST, mac="00155D380120", gsi=True)
        Lab(sim.world).wait_ready(vm)
    elif state == "container-host":
        lab = Lab(sim.world)
        lab.vm(CONTAINER_HOST, index=0x21)
        lab.container_host(CONTAINER_HOST, version=docker_version)
    sim.world.dirty = True


def _stop_docker(sim: Simulator) -> None:
    """The docker service of ch01 stopped, as `Stop-Service docker` leaves it: docker.exe finds no pipe."""
    assert sim.world is not None
    with sim.world.lock:
        vm = sim.world.find_vm(CONTAINER_HOST)
        assert vm is not None
        engine = C.host_of(vm.guest).docker
        assert engine is not None
        engine.status = "Stopped"
        sim.world.dirty = True


def _record(ps: PowerShell) -> dict[str, Any]:
    assert ps.streams.error, f"no error record; output: {ps.output}"
    rec = ps.streams.error[-1]
    exc = getattr(rec, "exception", None)
    types = list(getattr(exc, "types", None) or [])
    props = getattr(exc, "adapted_properties", {}) or {}
    message = str(rec.details_message or props.get("Message") or rec.message or "")
    category = rec.category
    return {
        "message": message,
        "fqid": str(rec.fq_error),
        "category": CATEGORIES[int(category)] if isinstance(category, int) and 0 <= category < len(CATEGORIES)
        else str(category),
        "target": rec.target_name or "",
        "target_type": rec.target_type or "",
        "activity": rec.activity or "",
        "reason": rec.reason or "",
        "exception": types[0].removeprefix("Deserialized.") if types else "",
        "terminating": bool(ps.had_errors),
    }


_VAR = re.compile(r"\$\{([A-Za-z_]\w*)(?::(\d+))?\}")


def _substitute(value: Any, variables: dict[str, str]) -> Any:
    """``${name}`` -> the variable, ``${name:N}`` -> its first N characters, in strings, lists and dicts."""
    if isinstance(value, str):
        def one(m: re.Match[str]) -> str:
            if m.group(1) not in variables:
                return m.group(0)
            text = variables[m.group(1)]
            return text[: int(m.group(2))] if m.group(2) else text
        return _VAR.sub(one, value)
    if isinstance(value, list):
        return [_substitute(v, variables) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, variables) for k, v in value.items()}
    return value


def _capture(step: dict[str, Any], got: dict[str, Any], variables: dict[str, str]) -> None:
    """A setup step's ``capture``: name -> regex searched in its stdout; the first group (or the match) is kept."""
    text = "\n".join(got["stdout"])
    for name, pattern in (step.get("capture") or {}).items():
        m = re.search(pattern, text, re.MULTILINE)
        assert m is not None, f"capture {name}: /{pattern}/ not in {got['stdout']}"
        variables[name] = m.group(1) if m.groups() else m.group(0)


def _bind_fresh(want: Any, got: Any, fresh: list[str], variables: dict[str, str]) -> None:
    """Bind the ``fresh`` names of ``want`` from ``got``: each a new lower-case hex id (``${x:N}``: its first N
    characters), the same at every use, not one of the captured values."""
    if isinstance(want, list) and isinstance(got, list):
        for w, g in zip(want, got, strict=False):
            _bind_fresh(w, g, fresh, variables)
        return
    if not isinstance(want, str) or not isinstance(got, str):
        return
    parts: list[str] = []
    names: list[tuple[str, int]] = []
    pos = 0
    for m in _VAR.finditer(want):
        if m.group(1) not in fresh:
            continue
        parts.append(re.escape(want[pos:m.start()]))
        width = int(m.group(2) or 64)
        parts.append(f"([0-9a-f]{{{width}}})")
        names.append((m.group(1), width))
        pos = m.end()
    if not names:
        return
    match = re.fullmatch("".join(parts) + re.escape(want[pos:]), got)
    if match is None:
        return  # the comparison shows the difference
    taken = {v for k, v in variables.items() if k not in fresh}
    for (name, _width), value in zip(names, match.groups(), strict=True):
        known = variables.get(name, "")
        assert known.startswith(value) or value.startswith(known), f"${{{name}}}: {value} and {known}"
        assert not any(t.startswith(value) for t in taken), f"${{{name}}} = {value} is not a new id"
        if len(value) > len(known):
            variables[name] = value


def test_the_corpus_is_large_and_every_case_is_well_formed() -> None:
    assert len(CASES) >= 60, f"only {len(CASES)} transcript cases"
    areas = {p.parent.name for p in CASES}
    assert {"hyperv", "storage", "networking", "powershell", "psdirect", "features", "docker"} <= areas, areas
    for path in CASES:
        case = load(path)
        assert str(case.get("source", "")).startswith("https://"), path
        assert case.get("transcript"), path
        assert case.get("state", "host") in STATES, path
        assert sum(k in case["run"] for k in ("cmdlet", "docker", "step")) == 1, path
        assert case["expect"], path
        named = {n for step in case.get("setup", []) for n in (step.get("capture") or {})}
        used = {m.group(1) for m in _VAR.finditer(json.dumps([case["run"], case["expect"]]))}
        assert used <= named | set(case.get("fresh", [])), (path, used - named)


@pytest.mark.parametrize("path", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_the_simulator_answers_as_the_transcript_shows(path: Path, sim: Simulator, pool: RunspacePool) -> None:
    case = load(path)
    _prepare(sim, case.get("state", "host"), case.get("host"), case.get("docker_version", DOCKER_VERSION))
    variables: dict[str, str] = {}
    for step in case.get("setup", []):
        if "docker" in step:
            got = _docker(pool, _substitute(step["docker"], variables))
            assert got["exit_code"] == 0, (step, got)
            _capture(step, got, variables)
        else:
            ps = _invoke(pool, step)
            assert not ps.had_errors and not ps.streams.error, (step, [str(e) for e in ps.streams.error])
    if case.get("docker_service") == "Stopped":
        _stop_docker(sim)
    run = _substitute(case["run"], variables)
    if "docker" in run:
        got = _docker(pool, run["docker"])
    elif "step" in run:
        # A labctl guest step (the simulator models those, not arbitrary guest scripts): its error as it
        # reaches the host through Invoke-Command -VMName.
        got = _record(_invoke(pool, {"cmdlet": "Invoke-Command", "parameters": {
            "VMName": run.get("vm", GUEST), "Credential": {"$credential": ["Administrator", PASSWORD]},
            "ScriptBlock": {"$scriptblock": f"# labctl-step: {run['step']} 1\nparam()\n"},
            "ArgumentList": run.get("arguments", [])}}))
    else:
        got = _record(_invoke(pool, run))
    for key, want in case["expect"].items():
        _bind_fresh(want, got.get(key), list(case.get("fresh", [])), variables)
    expect = _substitute(case["expect"], variables)
    diff = {k: {"want": v, "got": got.get(k)} for k, v in expect.items() if got.get(k) != v}
    assert not diff, f"{path.relative_to(HERE)} ({case['source']}): {json.dumps(diff, indent=1)}"
