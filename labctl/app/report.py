"""labctl report: the last run's timeline as a Gantt chart, a self-contained SVG or HTML page.

One row per VM with its stages in order, the host steps on top, stages coloured by kind, failures marked, the
time axis labelled wall-clock or modeled (on a simulator whose clock models the run). Plain SVG rects and text,
no script and nothing fetched; every lab, host and detail string is XML-escaped (user text is never markup).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from xml.sax.saxutils import escape, quoteattr

from labctl.engine.timeline import TIMELINE_FILE, Chart, Interval, ModeledOp, chart, load_timeline, op_kind
from labctl.errors import LabUsageError
from labctl.fsio import atomic_write
from labctl.lab.model import ResolvedLab

Format = Literal["svg", "html"]
FORMATS: tuple[Format, ...] = ("svg", "html")

COLOURS = {"host": "#6c757d", "create": "#4e79a7", "boot": "#f28e2b", "bootstrap": "#59a14f",
           "verify": "#b07aa1", "queue": "#bab0ac", "ready": "#2f2f2f", "other": "#9c755f"}
LEGEND = (("host", "host steps"), ("create", "create (disk, answer file, VM)"), ("boot", "boot and waits"),
          ("bootstrap", "bootstrap (features, Docker, images)"), ("verify", "verify"),
          ("queue", "waiting for a worker"))
FAILED = "#d62728"
WIDTH = 1100
ROW_H = 24
BAR_H = 16
TOP = 92
# Characters XML 1.0 does not allow at all (escaping cannot save them): shown as U+FFFD.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass
class ReportResult:
    path: Path
    format: Format
    axis: str
    rows: int


def timeline_path(lab: ResolvedLab) -> Path:
    """Where up writes the lab's timeline (a class's in its own directory, beside class.json)."""
    return Path(lab.class_state_dir or lab.state_dir) / TIMELINE_FILE


def load_chart(lab: ResolvedLab) -> Chart:
    """The chart of the lab's last run; LabUsageError when there is none (run up first)."""
    path = timeline_path(lab)
    try:
        document = load_timeline(path)
    except FileNotFoundError:
        raise LabUsageError(f"lab {lab.name} has no timeline yet ({path} is missing)",
                            hint=f"run labctl up {lab.source} first; it records the timeline of every run")
    except (OSError, ValueError) as exc:
        raise LabUsageError(f"the timeline of lab {lab.name} cannot be read: {path}: {exc}",
                            hint=f"run labctl up {lab.source} again to record a new one")
    return chart(document)


def report(lab: ResolvedLab, fmt: Format = "html", output: Path | None = None) -> ReportResult:
    """Render the last run's timeline to ``output`` (default ``.labctl/<lab>/report.<fmt>``)."""
    drawn = load_chart(lab)
    target = output if output is not None else timeline_path(lab).with_name(f"report.{fmt}")
    text = render_svg(drawn) if fmt == "svg" else render_html(drawn)
    atomic_write(target, text, mode=0o644)
    return ReportResult(target, fmt, drawn.axis, len(drawn.rows))


# --- drawing ----------------------------------------------------------------------------------------------


def _clean(value: object) -> str:
    return _NOT_XML.sub("\ufffd", str(value))


def text(value: object) -> str:
    """``value`` as XML character data."""
    return escape(_clean(value))


def attr(value: object) -> str:
    """``value`` as a quoted XML attribute value."""
    return quoteattr(_clean(value))


def _fmt_t(seconds: float, span: float) -> str:
    if span >= 600:
        return f"{seconds / 60:.0f} min" if seconds % 60 == 0 else f"{seconds / 60:.1f} min"
    if span >= 10:
        return f"{seconds:.0f} s"
    return f"{seconds:.2f} s" if span < 1 else f"{seconds:.1f} s"


def _step(span: float) -> float:
    """A round tick step giving 5 to 10 ticks."""
    if span <= 0:
        return 1.0
    raw = span / 8
    magnitude = 10 ** int(f"{raw:e}".split("e")[1])
    for factor in (1, 2, 5, 10):
        if raw <= factor * magnitude:
            return float(factor * magnitude)
    return float(10 * magnitude)


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.2f} s"


def title_of(c: Chart) -> str:
    return f"labctl up of lab {c.lab} on {c.host}" + (" [SIMULATED]" if c.simulated else "")


class _Svg:
    def __init__(self, span: float, label_w: int) -> None:
        self.parts: list[str] = []
        self.span = span if span > 0 else 1.0
        self.left = label_w
        self.plot = WIDTH - label_w - 30

    def x(self, t: float) -> float:
        return self.left + max(0.0, t) / self.span * self.plot

    def add(self, line: str) -> None:
        self.parts.append(line)

    def axis(self, y: float, label: str, top: float) -> float:
        step = _step(self.span)
        self.add(f'<line x1="{self.left}" y1="{y:.1f}" x2="{self.left + self.plot}" y2="{y:.1f}" stroke="#333"/>')
        t = 0.0
        while t <= self.span + 1e-9:
            x = self.x(t)
            self.add(f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{y + 4:.1f}" stroke="#ddd"/>')
            self.add(f'<text x="{x:.1f}" y="{y + 16:.1f}" text-anchor="middle" font-size="11">'
                     f'{text(_fmt_t(t, self.span))}</text>')
            t += step
        self.add(f'<text class="axis-label" x="{self.left + self.plot / 2:.1f}" y="{y + 34:.1f}" '
                 f'text-anchor="middle" font-size="12">{text(label)}</text>')
        return y + 44


def _tooltip(bar: Interval, c: Chart) -> str:
    lines = [f"{bar.row} · {bar.stage}: {bar.status}" + (" (wait)" if bar.wait else ""),
             f"{_duration(bar.duration)} from {_duration(bar.start)} ({c.axis})"]
    if bar.detail:
        lines.append(bar.detail)
    lines += bar.steps[:12]
    if bar.after:
        lines.append("after " + ", ".join(bar.after))
    return "\n".join(lines)


def _bar(svg: _Svg, bar: Interval, y: float, c: Chart) -> None:
    x = svg.x(bar.start)
    w = max(2.0, svg.x(bar.end) - x)
    data = (f'data-row={attr(bar.row)} data-stage={attr(bar.stage)} data-kind={attr(bar.kind)} '
            f'data-status={attr(bar.status)} data-start="{bar.start:.6f}" data-end="{bar.end:.6f}"')
    tip = f"<title>{text(_tooltip(bar, c))}</title>"
    if bar.kind == "ready":  # the end of the chain: a milestone, not a bar
        cx, cy = x, y + BAR_H / 2
        svg.add(f'<polygon class="milestone" {data} points="{cx:.1f},{cy - 6:.1f} {cx + 6:.1f},{cy:.1f} '
                f'{cx:.1f},{cy + 6:.1f} {cx - 6:.1f},{cy:.1f}" fill="{COLOURS["ready"]}">{tip}</polygon>')
        return
    style = {"fill": COLOURS.get(bar.kind, COLOURS["other"])}
    if bar.wait:  # a wait changes nothing (it reports skip) but its time is the guest's: never pale
        style.update({"fill-opacity": "0.6", "stroke": "#7a4a10", "stroke-dasharray": "3 2"})
    elif bar.status == "skip":
        style["fill-opacity"] = "0.35"
    if bar.status == "failed":
        style.update({"stroke": FAILED, "stroke-width": "2.5"})
        style.pop("stroke-dasharray", None)
    elif bar.status == "unfinished":
        style.update({"stroke": "#000", "stroke-dasharray": "2 2"})
    attrs = " ".join(f"{k}={attr(v)}" for k, v in style.items())
    svg.add(f'<rect class="bar" {data} x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{BAR_H}" rx="2" '
            f'{attrs}>{tip}</rect>')
    if w >= 7 * len(bar.stage) + 6:
        svg.add(f'<text x="{x + 3:.1f}" y="{y + 12:.1f}" font-size="11" fill="#fff" pointer-events="none">'
                f'{text(bar.stage)}</text>')
    if bar.status == "failed":
        svg.add(f'<text class="failure" data-row={attr(bar.row)} data-stage={attr(bar.stage)} '
                f'x="{x + w + 4:.1f}" y="{y + 12:.1f}" font-size="11" fill="{FAILED}" font-weight="bold">'
                f'✗ {text(bar.stage)} failed</text>')


def _row_label(svg: _Svg, row: str, y: float) -> None:
    svg.add(f'<text class="row-label" x="{svg.left - 8}" y="{y + 12:.1f}" text-anchor="end" font-size="12">'
            f'{text(row)}</text>')


def _legend(svg: _Svg, y: float) -> float:
    x = float(svg.left)
    svg.add('<g class="legend">')
    for kind, label in LEGEND:
        svg.add(f'<rect x="{x:.1f}" y="{y:.1f}" width="12" height="12" fill="{COLOURS[kind]}"/>')
        svg.add(f'<text x="{x + 16:.1f}" y="{y + 10:.1f}" font-size="11">{text(label)}</text>')
        x += 30 + 6.5 * len(label)
    svg.add(f'<rect x="{x:.1f}" y="{y:.1f}" width="12" height="12" fill="#fff" stroke="{FAILED}" '
            'stroke-width="2.5"/>')
    svg.add(f'<text x="{x + 16:.1f}" y="{y + 10:.1f}" font-size="11">failed</text>')
    x += 70
    svg.add(f'<polygon points="{x + 6:.1f},{y:.1f} {x + 12:.1f},{y + 6:.1f} {x + 6:.1f},{y + 12:.1f} '
            f'{x:.1f},{y + 6:.1f}" fill="{COLOURS["ready"]}"/>')
    svg.add(f'<text x="{x + 16:.1f}" y="{y + 10:.1f}" font-size="11">ready</text>')
    svg.add(f'<text x="{svg.left}" y="{y + 30:.1f}" font-size="11" fill="#555">pale: nothing to do (skipped); '
            'dashed outline: a wait for the guest; hover a bar for its details</text>')
    svg.add("</g>")
    return y + 44


def _modeled_section(c: Chart, y: float, label_w: int) -> tuple[list[str], float]:
    """The simulator's own modeled operations by actor (what the stages above were placed by)."""
    ops: list[ModeledOp] = c.modeled_ops
    origin = min(o.start for o in ops)
    span = max(o.end for o in ops) - origin
    svg = _Svg(span, label_w)
    svg.add(f'<g class="modeled-ops"><text x="10" y="{y:.1f}" font-size="14" font-weight="bold">'
            'Modeled operations (simulated host)</text>')
    y += 14
    top = y
    order = {v: k for k, v in enumerate(c.vms)}
    actors = sorted({o.actor for o in ops}, key=lambda a: (a in order, a != "host", order.get(a, 0), a))
    for actor in actors:
        _row_label(svg, actor, y)
        for op in (o for o in ops if o.actor == actor):
            x = svg.x(op.start - origin)
            w = max(2.0, svg.x(op.end - origin) - x)
            kind = op_kind(actor not in c.vms, op.key)
            svg.add(f'<rect class="op" data-row={attr(actor)} data-op={attr(op.key)} x="{x:.1f}" y="{y:.1f}" '
                    f'width="{w:.1f}" height="{BAR_H}" fill="{COLOURS.get(kind, COLOURS["other"])}">'
                    f'<title>{text(f"{actor} · {op.key}: {_duration(op.end - op.start)} (modeled)")}</title></rect>')
        y += ROW_H
    y = svg.axis(y + 4, "modeled (simulated host) seconds", top)
    svg.add("</g>")
    return svg.parts, y


def render_svg(c: Chart, *, declaration: bool = True) -> str:
    """The chart as a standalone SVG document."""
    label_w = max(120, min(260, 8 * max([len(r) for r in c.rows] + [4]) + 20))
    svg = _Svg(c.span, label_w)
    y = float(TOP)
    top = y
    svg.add(f'<g class="stages" data-axis={attr(c.axis)}>')
    for row in c.rows:
        if c.vms and row == c.vms[0] and row != c.rows[0]:  # host steps above, VMs below
            svg.add(f'<line x1="10" y1="{y - 3:.1f}" x2="{WIDTH - 10}" y2="{y - 3:.1f}" stroke="#999" '
                    'stroke-dasharray="4 3"/>')
        svg.add(f'<g class="row" data-row={attr(row)}>')
        _row_label(svg, row, y)
        for bar in (b for b in c.bars if b.row == row):
            _bar(svg, bar, y, c)
        svg.add("</g>")
        y += ROW_H
    svg.add("</g>")
    y = svg.axis(y + 4, ("modeled (simulated host) seconds since the run began" if c.axis == "modeled"
                         else c.axis_label), top)
    y = _legend(svg, y)
    parts = svg.parts
    if c.modeled_ops:
        more, y = _modeled_section(c, y + 10, label_w)
        parts += more
    height = int(y + 10)
    sub = [f"host: {c.host}", "simulated" if c.simulated else "real host"]
    if c.profile:
        sub.append(f"{c.profile} profile")
    if c.started_at:
        sub.append(f"started {c.started_at}")
    sub.append(f"time axis: {'modeled' if c.axis == 'modeled' else 'wall clock'}")
    head = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="Segoe UI, Helvetica, Arial, sans-serif" role="img">',
        f"<title>{text(title_of(c))}</title>",
        f'<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="#fff"/>',
        f'<text class="title" x="10" y="26" font-size="18" font-weight="bold">{text(title_of(c))}</text>',
        f'<text class="subtitle" x="10" y="46" font-size="12" fill="#333">{text(" · ".join(sub))}</text>',
        f'<text class="note" x="10" y="64" font-size="11" fill="#555">{text(c.note)}</text>',
    ]
    body = "\n".join([*head, *parts, "</svg>"]) + "\n"
    return ('<?xml version="1.0" encoding="UTF-8"?>\n' + body) if declaration else body


def render_html(c: Chart) -> str:
    """A self-contained page: the chart and a table of every stage (no script, nothing fetched)."""
    rows = []
    for b in c.bars:
        rows.append(f"<tr class={attr(b.status)}><td>{text(b.row)}</td><td>{text(b.stage)}</td>"
                    f"<td>{text(b.kind)}{' (wait)' if b.wait else ''}</td><td>{text(b.status)}</td>"
                    f"<td>{b.start:.2f}</td><td>{b.duration:.2f}</td><td>{text(b.detail)}</td></tr>")
    unit = "modeled seconds" if c.axis == "modeled" else "wall seconds"
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{text(title_of(c))}</title>",
        "<style>body{font-family:'Segoe UI',Helvetica,Arial,sans-serif;margin:1.5em;color:#222}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:2px 6px;"
        "text-align:left}tr.failed td{color:#d62728;font-weight:bold}svg{max-width:100%;height:auto}</style>",
        "</head><body>",
        f"<h1>{text(title_of(c))}</h1>",
        f"<p>{text(c.note)}</p>",
        render_svg(c, declaration=False),
        f"<h2>Stages ({text(unit)})</h2>",
        "<table><thead><tr><th>row</th><th>stage</th><th>kind</th><th>status</th><th>start</th>"
        "<th>duration</th><th>detail</th></tr></thead><tbody>",
        *rows,
        "</tbody></table>",
        "</body></html>",
        "",
    ])
