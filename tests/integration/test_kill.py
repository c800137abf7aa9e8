"""Kill anywhere: `up` SIGKILLed at every stage; one rerun converges to the host an uninterrupted run makes,
and `destroy` after a kill leaves the host as it was."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from killpoints import POINTS, KillPoint, kill_up_at
from labharness import Lab, ServedSim, make_lab, run


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """The host after an uninterrupted `up` of the quickstart (ids and lab ids blanked)."""
    lab = make_lab(tmp_path_factory.mktemp("reference"))
    served = ServedSim(lab.sim_state)
    try:
        result = run("up", str(lab.file))
        assert result.exit_code == 0, result.output
        return served.shape()
    finally:
        served.close()


@pytest.fixture
def host(quickstart: Lab) -> Iterator[tuple[Lab, ServedSim, dict[str, list[str]]]]:
    served = ServedSim(quickstart.sim_state)
    yield quickstart, served, served.inventory()
    served.close()


@pytest.mark.parametrize("point", POINTS, ids=lambda p: p.id)
def test_a_kill_at_any_stage_is_destroyed_completely_and_a_rerun_converges(
        point: KillPoint, host: tuple[Lab, ServedSim, dict[str, list[str]]],
        reference: dict[str, list[str]]) -> None:
    lab, served, empty = host
    kill_up_at(served.sim, lab.file, point)
    gone = run("destroy", str(lab.file), "--yes")
    assert gone.exit_code == 0, gone.output
    assert served.inventory() == empty, f"destroy after a kill at {point.id} left things behind"
    assert not (lab.state / "journal.json").exists()

    kill_up_at(served.sim, lab.file, point)
    again = run("up", str(lab.file))
    assert again.exit_code == 0, again.output
    shape = served.shape()
    diff = {k: (sorted(set(shape[k]) - set(reference[k])), sorted(set(reference[k]) - set(shape[k])))
            for k in shape if shape[k] != reference[k]}
    assert not diff, f"the rerun after a kill at {point.id} differs from an uninterrupted run (extra, missing): {diff}"
    assert run("destroy", str(lab.file), "--yes").exit_code == 0
    assert served.inventory() == empty


def test_kill_points_cover_every_stage() -> None:
    from labctl.engine.stages import BOOTSTRAP_STAGES, BUILD_STAGES

    covered = {p.stage.split(" ")[0] for p in POINTS}
    for stage in (*BUILD_STAGES, "readiness", *BOOTSTRAP_STAGES):
        if stage == "start":
            assert "start" in covered
        assert stage in covered or (stage == "images" and "images" in covered), stage
    assert len(POINTS) >= 10


