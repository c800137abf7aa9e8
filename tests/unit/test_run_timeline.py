"""The run's timeline: events -> stage intervals, modeled time from the simulator's clock, and the drawing."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from labctl import redact
from labctl.app.report import render_html, render_svg
from labctl.engine.timeline import Event, TimelineProgress, chart, intervals

SVG = "{http://www.w3.org/2000/svg}"
VMS = ["vm1", "vm2"]


class Recorder:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str, str]] = []

    def stage(self, vm: str, stage: str, status: str, detail: str = "") -> None:
        self.seen.append((vm, stage, status, detail))


class Ticks:
    """A clock that advances one second per reading."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def _run(progress: TimelineProgress, plan: list[tuple[str, str, str, str]]) -> None:
    for vm, stage, status, detail in plan:
        progress.stage(vm, stage, status, detail)


def _events(*rows: tuple[float, str, str, str, str]) -> list[Event]:
    return [Event(t, row, stage, status, detail) for t, row, stage, status, detail in rows]


def test_progress_records_every_event_and_forwards_it_unchanged() -> None:
    inner = Recorder()
    tl = TimelineProgress(inner, clock=Ticks(), wall=lambda: 1_000.0)
    plan = [("host", "switch", "start", "lab-sw"), ("host", "switch", "done", "lab-sw"),
            ("vm1", "disk", "start", ""), ("vm1", "disk", "done", "")]
    _run(tl, plan)
    assert inner.seen == plan
    assert [(e.row, e.stage, e.status, e.detail) for e in tl.events()] == plan
    assert [e.t for e in tl.events()] == [1.0, 2.0, 3.0, 4.0]  # seconds since the run began, in order


def test_a_secret_in_a_detail_never_reaches_the_timeline() -> None:
    redact.register("Tr0ub4dor&3-timeline")
    tl = TimelineProgress(Recorder())
    tl.stage("vm1", "logon", "failed", "logon as Administrator with Tr0ub4dor&3-timeline refused")
    doc = tl.document(lab="l", host="h", simulated=True, vms=["vm1"])
    assert "Tr0ub4dor&3-timeline" not in repr(doc)
    assert doc["events"][0]["detail"] == "logon as Administrator with <redacted> refused"


def test_events_become_intervals_host_first_then_each_vms_stages_in_order() -> None:
    events = _events(
        (0.0, "host", "switch", "start", "sw"), (1.0, "host", "switch", "done", "sw"),
        (1.0, "vm1", "disk", "start", ""), (2.0, "vm1", "disk", "done", ""),
        (2.0, "vm1", "heartbeat", "start", ""), (9.0, "vm1", "heartbeat", "skip", ""),
        (9.0, "vm1", "features", "start", "Containers"),
        (10.0, "vm1", "features", "start", "restarting the VM"),
        (12.0, "vm1", "features", "done", ""),
        (12.5, "vm1", "ready", "done", ""),
    )
    got = intervals(events, VMS)
    assert [(i.row, i.stage, i.status) for i in got] == [
        ("host", "switch", "done"), ("vm1", "disk", "done"), ("vm1", "heartbeat", "skip"),
        ("vm1", "features", "done"), ("vm1", "ready", "done")]
    by = {i.id: i for i in got}
    assert by["vm1/heartbeat"].wait and by["vm1/heartbeat"].kind == "boot"
    assert (by["vm1/heartbeat"].start, by["vm1/heartbeat"].end) == (2.0, 9.0)
    assert not by["vm1/features"].wait and by["vm1/features"].kind == "bootstrap"
    assert by["vm1/features"].steps == ["restarting the VM"] and by["vm1/features"].detail == "Containers"
    assert by["host/switch"].kind == "host" and by["vm1/disk"].kind == "create"
    # What waited on what: the first stage on the host steps, each later one on the one before.
    assert by["vm1/disk"].after == ["host/switch"]
    assert by["vm1/heartbeat"].after == ["vm1/disk"] and by["vm1/ready"].after == ["vm1/features"]


def test_a_failure_ends_its_interval_and_an_unfinished_stage_lasts_to_the_run_end() -> None:
    events = _events((0.0, "vm1", "disk", "start", ""), (3.0, "vm1", "disk", "failed", "vm1: disk failed: full"),
                     (0.5, "vm2", "disk", "start", ""))
    got = {i.id: i for i in intervals(events, VMS, end_of_run=7.0)}
    assert got["vm1/disk"].status == "failed" and got["vm1/disk"].detail == "vm1: disk failed: full"
    assert got["vm2/disk"].status == "unfinished" and got["vm2/disk"].end == 7.0


def test_a_vm_that_began_only_after_another_chain_ended_waited_for_a_worker() -> None:
    events = _events(
        (0.0, "host", "nat", "start", ""), (1.0, "host", "nat", "done", ""),
        (1.0, "vm1", "disk", "start", ""), (4.0, "vm1", "disk", "done", ""), (4.0, "vm1", "ready", "done", ""),
        (4.1, "vm2", "disk", "start", ""), (5.0, "vm2", "disk", "done", ""), (5.0, "vm2", "ready", "done", ""),
    )
    got = {i.id: i for i in intervals(events, VMS)}
    queued = got["vm2/queued"]
    assert queued.wait and queued.kind == "queue" and (queued.start, queued.end) == (1.0, 4.1)
    assert got["vm2/disk"].after == ["vm2/queued"]
    assert "vm1/queued" not in got  # vm1 had a worker at once


def _doc(**extra: Any) -> dict[str, Any]:
    events = _events(
        (0.0, "host", "switch", "start", "sw"), (0.1, "host", "switch", "done", "sw"),
        (0.1, "vm1", "disk", "start", ""), (0.2, "vm1", "disk", "done", ""),
        (0.2, "vm1", "heartbeat", "start", ""), (0.3, "vm1", "heartbeat", "skip", ""),
        (0.3, "vm1", "ready", "done", ""),
    )
    doc: dict[str, Any] = {"version": 1, "lab": "l", "host": "sim", "simulated": True, "profile": "instant",
                           "started_epoch": 1000.0, "elapsed_seconds": 0.3, "vms": ["vm1"],
                           "events": [e.to_json() for e in events], "clocks": {}}
    doc.update(extra)
    return doc


def test_the_simulators_modeled_timeline_puts_each_stage_on_modeled_time() -> None:
    events = _events(
        (0.0, "host", "switch", "start", "sw"), (0.1, "host", "switch", "done", "sw"),
        (0.1, "vm1", "disk", "start", ""), (0.2, "vm1", "disk", "done", ""),
        (0.2, "vm1", "start", "start", ""), (0.3, "vm1", "start", "done", ""),
        (0.3, "vm1", "heartbeat", "start", ""), (0.4, "vm1", "heartbeat", "skip", ""),
        (0.4, "vm1", "features", "start", ""), (0.5, "vm1", "features", "done", ""),
        (0.5, "vm1", "verify", "start", ""), (0.6, "vm1", "verify", "done", ""),
        (0.6, "vm1", "ready", "done", ""),
    )
    timeline = {"unit": "simulated seconds from the first operation", "columns": ["key", "start", "end", "count"],
                "actors": {"host": [["new_vm_switch", 0.0, 4.0, 1]],
                           "vm1": [["new_vhd_differencing", 4.0, 5.0, 1], ["start_vm", 5.0, 7.0, 1],
                                   ["first_boot_specialize_oobe", 7.0, 217.0, 1],
                                   ["ps_direct_command", 217.0, 218.0, 1],
                                   ["install_feature_containers", 218.0, 338.0, 1],
                                   ["boot_to_heartbeat", 428.0, 468.0, 1],  # after the features' restart
                                   ["container_start_process", 470.0, 472.0, 1]]}}
    doc = _doc(events=[e.to_json() for e in events], clocks={"host": {"profile": "instant", "timeline": timeline}})
    c = chart(doc)
    assert c.axis == "modeled" and "modeled" in c.axis_label and "modeled" in c.note
    bars = {b.id: (b.start, b.end) for b in c.bars}
    assert bars["host/switch"] == (0.0, 4.0)
    assert bars["vm1/disk"] == (4.0, 5.0) and bars["vm1/start"] == (5.0, 7.0)
    assert bars["vm1/heartbeat"] == (7.0, 218.0)  # the first boot, and the command run once it was up
    assert bars["vm1/features"] == (218.0, 468.0)  # the boot after its restart is the features' own time
    assert bars["vm1/verify"] == (470.0, 472.0)
    assert bars["vm1/ready"] == (472.0, 472.0)
    assert c.span == 472.0
    root = ET.fromstring(render_svg(c).split("\n", 1)[1])
    axis = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "axis-label"]
    assert axis[0] == "modeled (simulated host) seconds since the run began"
    ops = [(o.get("data-row"), o.get("data-op")) for o in root.iter(f"{SVG}rect") if o.get("class") == "op"]
    assert ("vm1", "first_boot_specialize_oobe") in ops and ("host", "new_vm_switch") in ops


def test_without_a_modeled_timeline_the_wall_clock_is_drawn_and_said_so() -> None:
    c = chart(_doc(clocks={"host": {"profile": "instant", "estimated_makespan_seconds": 700.0}}))
    assert c.axis == "wall" and "wall-clock" in c.note and "instant" in c.note
    assert "wall-clock seconds" in render_svg(c)


NASTY = "</text><script>alert('x')</script>&amp; \"q\" ]]> <![CDATA[ \x00\x1b[31m \ud800 ok"


def test_user_and_host_strings_are_text_never_markup() -> None:
    doc = _doc(lab="<b>lab</b>", host="<img src=x onerror=alert(1)>")
    doc["events"][3]["detail"] = NASTY  # vm1 disk done
    doc["vms"] = ["vm1", "<vm & co>"]
    c = chart(doc)
    svg = render_svg(c)
    root = ET.fromstring(svg.split("\n", 1)[1])  # well-formed XML (the declaration aside)
    assert not any(el.tag.endswith("script") or el.tag.endswith("img") for el in root.iter())
    assert root.find(f"{SVG}title").text == "labctl up of lab <b>lab</b> on <img src=x onerror=alert(1)> [SIMULATED]"
    disk = root.find(f".//{SVG}rect[@data-stage='disk']")
    assert disk is not None
    tip = disk.find(f"{SVG}title").text
    assert "</text><script>alert('x')</script>&amp; \"q\" ]]> <![CDATA[" in tip  # shown as written
    assert "\x00" not in tip and "\ufffd[31m" in tip  # characters XML cannot carry are replaced, visibly
    labels = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "row-label"]
    assert labels == ["host", "vm1", "<vm & co>"]
    html = render_html(c)
    assert "<script" not in html and "<img" not in html and "&lt;script&gt;" in html


def test_the_svg_is_well_formed_with_a_row_per_vm_a_legend_and_the_title() -> None:
    svg = render_svg(chart(_doc()))
    assert svg.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(svg.split("\n", 1)[1])
    assert root.tag == f"{SVG}svg"
    rows = [g.get("data-row") for g in root.iter(f"{SVG}g") if g.get("class") == "row"]
    assert rows == ["host", "vm1"]
    legend = next(g for g in root.iter(f"{SVG}g") if g.get("class") == "legend")
    words = " ".join(t.text or "" for t in legend.iter(f"{SVG}text"))
    for kind in ("host steps", "create", "boot and waits", "bootstrap", "verify", "failed"):
        assert kind in words
    bars = [(r.get("data-row"), r.get("data-stage")) for r in root.iter(f"{SVG}rect") if r.get("class") == "bar"]
    assert bars == [("host", "switch"), ("vm1", "disk"), ("vm1", "heartbeat")]


def test_a_failed_stage_is_marked_on_its_bar() -> None:
    doc = _doc()
    doc["events"] = [e.to_json() for e in _events((0.0, "vm1", "logon", "start", ""),
                                                  (5.0, "vm1", "logon", "failed", "vm1: logon refused"))]
    root = ET.fromstring(render_svg(chart(doc)).split("\n", 1)[1])
    bar = root.find(f".//{SVG}rect[@data-stage='logon']")
    assert bar is not None and bar.get("data-status") == "failed" and bar.get("stroke") == "#d62728"
    marks = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "failure"]
    assert marks == ["✗ logon failed"]


def test_a_vms_disk_booked_to_the_host_does_not_stretch_a_host_step() -> None:
    timeline = {"columns": ["key", "start", "end", "count"],
                "actors": {"host": [["new_vm_switch", 0.0, 4.0, 1], ["new_vhd_differencing", 4.0, 9.0, 2]],
                           "vm1": [["boot_to_heartbeat", 9.0, 49.0, 1]]}}
    c = chart(_doc(clocks={"host": {"profile": "instant", "timeline": timeline}}))
    bars = {b.id: (b.start, b.end) for b in c.bars}
    assert bars["host/switch"] == (0.0, 4.0)  # not 0..9: the disks are vm1's work, shown as modeled operations
    assert bars["vm1/heartbeat"] == (9.0, 49.0)
