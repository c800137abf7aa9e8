"""labctl destroy: remove exactly what the lab created."""

from __future__ import annotations

import sys

import click

from labctl.app.destroy import destroy_lab, destroy_orphaned
from labctl.app.inventory import HostLabs, HostSpec, journal_dirs
from labctl.cli.common import StageProgress, copy_option, handle_errors, load_lab_or_exit, out, prompt_secret
from labctl.cli.ls import host_options, host_specs, host_title, size
from labctl.errors import DestroyIncompleteError


@click.command("destroy")
@click.argument("lab_file", required=False, type=click.Path(exists=True, dir_okay=False))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--orphaned", is_flag=True,
              help="Instead: remove the labs on LAB_FILE's host (and each --host) whose journal is gone, by their "
                   "ownership tag only (see `labctl ls`).")
@host_options
@copy_option
@handle_errors
def destroy_cmd(lab_file: str | None, yes: bool, orphaned: bool, hosts: tuple[str, ...], username: str | None,
                password_env: str | None, fingerprint: str | None, labs_dirs: tuple[str, ...],
                copy: int | None) -> None:
    """Remove the VMs, disks, switch and NAT that LAB_FILE's lab created; nothing else."""
    if orphaned or hosts:
        if not orphaned:
            raise click.UsageError("--host goes with --orphaned")
        return destroy_orphaned_cmd(lab_file, yes, host_specs(hosts, username, password_env, fingerprint),
                                    labs_dirs)
    if lab_file is None:
        raise click.UsageError("name the lab file to destroy (or --orphaned --host H)")
    lab = load_lab_or_exit(lab_file, copy)
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError("destroy asks for confirmation; pass --yes when there is no terminal")
        what = f"copy {copy} of lab {lab.name}" if copy is not None else f"lab {lab.name}"
        click.confirm(f"Remove {what} ({len(lab.vms)} VMs) and everything it created?", abort=True)
    progress = StageProgress([vm.name for vm in lab.vms])
    report, host = destroy_lab(lab, progress, prompt_secret if sys.stdin.isatty() else None)
    if report.nothing_to_do:
        out.print(f"Nothing to remove: lab {lab.name} has nothing on {host}.")
    elif report.removed:
        out.print(f"Removed from {host} (each checked on the host):")
        for item in report.removed:
            out.print(f"  - {item}")
    for item in report.kept:
        out.print(f"  kept {item}")
    if report.remaining:
        raise DestroyIncompleteError(report.remaining, hint="the journal keeps what is left; fix the reason shown "
                                     "(or wait for the host), then run destroy again")


# --- destroy --orphaned ----------------------------------------------------------------------------------


def _show_orphans(listing: list[HostLabs]) -> None:
    for h in listing:
        orphans = [i for lab in h.labs for i in lab.instances if i.orphaned]
        if not orphans:
            continue
        out.print(f"Orphaned labs on {host_title(h)} (no journal at hand for their lab id):")
        for i in orphans:
            copy = f", copy {i.copy}" if i.copy is not None else ""
            out.print(f"  lab {i.lab} (lab id {i.lab_id}{copy}):")
            for v in i.vms:
                out.print(f"    vm {v.name} ({v.state})")
            for sw in i.switches:
                out.print(f"    switch {sw}")
            out.print(f"    folder {i.folder} ({size(i.disk_bytes)})")
            for nat in (n for n in h.facts.nats if n.name.lower() == f"labctl-{i.lab}".lower()):
                out.print(f"    nat {nat.name} ({nat.prefix}), if its prefix serves only this lab's switches")
        for lab in h.labs:
            for i in lab.instances:
                if not i.orphaned:
                    out.print(f"  kept: lab {i.lab} (lab id {i.lab_id}): its journal is at hand ({i.journal})")


def destroy_orphaned_cmd(lab_file: str | None, yes: bool, hosts: list[HostSpec], labs_dirs: tuple[str, ...]) -> None:
    """List the orphaned labs, ask, remove them by tag, and print only what the host shows gone."""
    if lab_file is None and not hosts:
        raise click.UsageError("--orphaned needs a lab file (its host is looked at) or --host H")
    lab = load_lab_or_exit(lab_file) if lab_file else None
    dirs = journal_dirs(lab_file, labs_dirs)
    asked: list[HostLabs] = []

    def confirm(listing: list[HostLabs]) -> bool:
        asked.extend(listing)
        _show_orphans(listing)
        out.print("journals looked up in: " + ", ".join(str(d / ".labctl") for d in dirs))
        if yes:
            return True
        if not sys.stdin.isatty():
            raise click.UsageError("destroy --orphaned asks for confirmation; pass --yes to remove the labs listed "
                                   "above when there is no terminal")
        click.confirm("Remove these labs and everything that carries their tags?", abort=True)
        return True

    listing, done = destroy_orphaned(lab, hosts, dirs, confirm, StageProgress([]),
                                     prompt_secret if sys.stdin.isatty() else None)
    if not asked:
        for h in listing:
            out.print(f"Nothing to remove: no orphaned labctl lab on {host_title(h)}.")
        return
    remaining: list[str] = []
    for r in done:
        copy = f", copy {r.copy}" if r.copy is not None else ""
        what = f"lab {r.lab} (lab id {r.lab_id}{copy})"
        if r.report.removed:
            out.print(f"Removed {what} from {r.host} (each checked on the host):")
            for item in r.report.removed:
                out.print(f"  - {item}")
        elif not r.report.remaining:
            out.print(f"Nothing of {what} was left to remove on {r.host}.")
        for item in r.report.kept:
            out.print(f"  kept {item}")
        remaining += [f"{item} ({what})" for item in r.report.remaining]
    if remaining:
        raise DestroyIncompleteError(remaining, hint="fix the reason shown (or wait for the host), then run "
                                     "destroy --orphaned again")
