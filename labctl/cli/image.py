"""labctl image build|list|rm: base images on the lab's host(s) (docs/images.md)."""

from __future__ import annotations

import json
import sys

import click
from rich.table import Table

from labctl.app import images as image_case
from labctl.app.images import HostImage
from labctl.app.secrets import Prompt
from labctl.cli.common import StageProgress, err, handle_errors, load_lab_or_exit, out, prompt_secret


def _prompt() -> Prompt | None:
    return prompt_secret if sys.stdin.isatty() else None


def _size(n: int) -> str:
    return image_case.size_text(n) if n else "-"


@click.group("image")
def image_group() -> None:
    """Base images: build them from their recipes on the lab's host(s), list them, remove one."""


@image_group.command("build")
@click.argument("lab_file", type=click.Path(exists=True, dir_okay=False))
@click.argument("images", nargs=-1)
@click.option("--wait-timeout", default=image_case.DEFAULT_WAIT_SECONDS, show_default=True,
              type=click.FloatRange(min=0), metavar="SECONDS",
              help="How long to wait while another labctl builds the same image on the host.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@handle_errors
def build_cmd(lab_file: str, images: tuple[str, ...], wait_timeout: float, as_json: bool) -> None:
    """Build IMAGES (default: those the lab's VMs use) that are missing on the host(s) of LAB_FILE."""
    lab = load_lab_or_exit(lab_file)
    progress = StageProgress([])
    with progress.show():
        result = image_case.build_images(lab, images, progress=None if as_json else progress,
                                         prompt=_prompt(),
                                         wait_seconds=wait_timeout)
    if as_json:
        out.print_json(json.dumps(result.to_json()))
        return
    table = Table(title=f"images of lab {lab.name} on {result.host}" + (" [SIMULATED]" if result.simulated else ""))
    for col in ("host", "image", "path", "result", "edition", "elapsed"):
        table.add_column(col)
    words = {"built": "built", "present": "already on the host", "waited": "built by another run (waited)"}
    for key, b in result.images:
        table.add_row(key, b.image, b.path, words.get(b.action, b.action),
                      f"{b.edition} {b.version}".strip() or "-", f"{b.seconds:.1f}s" if b.seconds else "-")
    out.print(table)
    if result.sim_clock:
        est = float(result.sim_clock.get("estimated_makespan_seconds") or 0.0)
        out.print(f"Simulated host: a real Hyper-V host would have taken about {est / 60:.1f} min (modeled).")


def _chain(row: HostImage) -> str:
    return " -> ".join(row.parents) if row.parents else "-"


def _dependants(row: HostImage) -> str:
    if not row.dependants:
        return "-"
    return f"{len(row.dependants)} disk(s)"


@image_group.command("list")
@click.argument("lab_file", type=click.Path(exists=True, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@handle_errors
def list_cmd(lab_file: str, as_json: bool) -> None:
    """The catalog's images on the host(s) of LAB_FILE: path, build, edition, size, parent chain, dependants."""
    lab = load_lab_or_exit(lab_file)
    result = image_case.list_images(lab, prompt=_prompt())
    if as_json:
        out.print_json(json.dumps(result.to_json()))
        return
    multi = len({row.host for row in result.images}) > 1
    table = Table(title=f"images on {result.host}" + (" [SIMULATED]" if result.simulated else ""))
    for col in (("host",) if multi else ()) + ("image", "path", "build", "edition", "size", "parents",
                                                "dependants", "labctl"):
        table.add_column(col)
    for row in result.images:
        first = (row.host,) if multi else ()
        if not row.present:
            state = "building (locked)" if row.building else ("missing (has a recipe)" if row.recipe else "missing")
            table.add_row(*first, row.image, row.path, str(row.os_build), state, "-", "-", "-", "-")
            continue
        table.add_row(*first, row.image, row.path, str(row.os_build), row.edition or "-", _size(row.size),
                      _chain(row), _dependants(row), f"built {row.built}" if row.owned else "not labctl's")
    out.print(table)
    for row in result.images:
        if not row.dependants:
            continue
        where = f" on {row.host}" if multi else ""
        labs = f" (labs: {', '.join(row.labs)})" if row.labs else ""
        out.print(f"{row.image}{where}: {len(row.dependants)} disk(s) depend on {row.path}{labs}")
        for d in row.dependants:
            out.print(f"  {d.describe()}")


@image_group.command("rm")
@click.argument("lab_file", type=click.Path(exists=True, dir_okay=False))
@click.argument("image")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@handle_errors
def rm_cmd(lab_file: str, image: str, yes: bool, as_json: bool) -> None:
    """Remove IMAGE (one labctl built) from the host(s) of LAB_FILE; refused while any disk depends on it."""
    lab = load_lab_or_exit(lab_file)

    def confirm(rows: list[HostImage]) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            raise click.UsageError("image rm asks for confirmation; pass --yes when there is no terminal")
        for row in rows:
            err.print(f"{row.host}: {row.path} ({row.edition or row.image})")
        return click.confirm(f"Remove image {image} from the host?", default=False)

    result = image_case.remove_image(lab, image, prompt=_prompt(), confirm=confirm)
    if as_json:
        out.print_json(json.dumps(result.to_json()))
        return
    if not result.removed:
        out.print(f"Image {image} is not on {result.host}: nothing to remove." if result.absent
                  else "Nothing removed.")
        return
    for line in result.removed:
        out.print(f"removed {line} (and its sidecar)")
