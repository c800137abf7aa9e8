"""labctl report: the timeline of the last up, drawn as SVG and HTML, checked against the journal."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from labharness import Lab, run

from labctl.engine.stages import BY_NAME, STAGES

SVG = "{http://www.w3.org/2000/svg}"


def test_report_before_any_up_says_to_run_up_first(quickstart: Lab) -> None:
    result = run("report", str(quickstart.file))
    assert result.exit_code == 2, result.output
    assert "no timeline" in result.stderr and "labctl up" in result.stderr


def test_report_draws_every_vm_and_every_done_stage_of_the_journal(quickstart: Lab) -> None:
    up = run("up", str(quickstart.file))
    assert up.exit_code == 0, up.output
    timeline = json.loads((quickstart.state / "timeline.json").read_text())
    assert timeline["lab"] == "quickstart" and timeline["simulated"] is True and timeline["profile"] == "instant"
    assert "wsman" in timeline["host"] and timeline["clocks"]["host"]["estimated_makespan_seconds"] > 0

    svg_path = quickstart.dir / "out" / "run.svg"
    drawn = run("report", str(quickstart.file), "--format", "svg", "--output", str(svg_path))
    assert drawn.exit_code == 0, drawn.output
    assert drawn.stdout.strip() == str(svg_path)
    root = ET.fromstring(svg_path.read_text(encoding="utf-8").split("\n", 1)[1])
    title = root.find(f"{SVG}title")
    assert title is not None and "quickstart" in (title.text or "") and "SIMULATED" in (title.text or "")
    axis = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "axis-label"]
    assert axis and ("wall-clock" in axis[0] or "modeled (simulated host)" in axis[0])

    rows = [g.get("data-row") for g in root.iter(f"{SVG}g") if g.get("class") == "row"]
    assert rows[0] == "host"
    journal = json.loads((quickstart.state / "journal.json").read_text())
    assert set(journal["vms"]) == {"qs-dc01", "qs-node01"}
    for vm, entry in journal["vms"].items():
        assert vm in rows
        bars = sorted((r for r in root.iter(f"{SVG}rect") if r.get("class") == "bar" and r.get("data-row") == vm),
                      key=lambda r: float(r.get("data-start") or 0))
        drawn_stages = [r.get("data-stage") for r in bars]
        done = [s for s in entry["stages"] if s in BY_NAME]  # "ready" is the chain's end, not a stage
        assert done, entry
        for stage in done:
            bar = next(r for r in bars if r.get("data-stage") == stage)
            assert bar.get("data-status") == "done", (vm, stage)
        assert [s for s in drawn_stages if s in done] == done  # in the journal's order
        assert drawn_stages == [s.name for s in STAGES]  # a container host: the whole table, in its order
        ready = [p for p in root.iter(f"{SVG}polygon") if p.get("data-row") == vm and p.get("data-stage") == "ready"]
        assert len(ready) == 1 and "ready" in entry["stages"]
    host_bars = [r.get("data-stage") for r in root.iter(f"{SVG}rect") if r.get("data-row") == "host"]
    assert {"switch", "gateway", "nat"} <= set(host_bars)

    page = run("report", str(quickstart.file))
    assert page.exit_code == 0, page.output
    html_path = quickstart.state / "report.html"
    assert page.stdout.strip() == str(html_path)
    html = html_path.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "<svg" in html and "qs-node01" in html
    assert "<script" not in html and "src=" not in html and "href=" not in html  # self-contained
    assert "Tr0" not in html and (quickstart.state / "guest-password").read_text().strip() not in html
