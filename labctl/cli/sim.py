"""``labctl sim``: run the embedded SIMULATED Hyper-V host and drive its control endpoint."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click

from labctl.app import sim as sim_app
from labctl.cli.common import handle_errors

STATE_OPTION = click.option(
    "--state", "state_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
    help="The simulator's state directory (certificate, credentials, endpoint.json, host state).")


def _pairs(values: tuple[str, ...], what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint=what)
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out


@click.group("sim")
def sim_group() -> None:
    """The embedded Hyper-V host simulator (a SIMULATED host speaking WinRM on loopback)."""


@sim_group.command("serve")
@STATE_OPTION
@click.option("--port", default=0, show_default=True, type=click.IntRange(0, 65535),
              help="HTTPS port (0: any free port).")
@click.option("--http-port", default=0, show_default=True, type=click.IntRange(0, 65535),
              help="HTTP port, NTLM with message encryption only (0: any free port).")
@click.option("--ssh-port", default=0, show_default=True, type=click.IntRange(0, 65535),
              help="SSH port, the powershell subsystem with the generated client key (0: any free port).")
@click.option("--profile", default="instant", show_default=True, type=click.Choice(["instant", "realistic"]),
              help="instant: modeled durations take no time; realistic: they take wall time / speedup.")
@click.option("--speedup", default=1.0, show_default=True, type=click.FloatRange(min=0.001),
              help="Divide realistic durations by this factor.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the fault plan.")
@click.option("--host-setting", "host_settings", multiple=True, metavar="KEY=VALUE",
              help="A fact of a new simulated host, e.g. memory_capacity=256GiB, cpu_vendor=AuthenticAMD, "
              "os_build=20348, logical_processor_count=8, c_volume_free=50GB, ui_culture=de-DE (repeatable).")
@click.option("--kerberos-keytab", default=None, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Accept Kerberos with the keys of HTTP/localhost@REALM in this keytab (needs --kerberos-realm).")
@click.option("--kerberos-realm", default=None, metavar="REALM",
              help="The Kerberos realm whose <administrator>@REALM the host admits, e.g. LABCTL.TEST.")
@click.option("--credssp/--no-credssp", default=False, show_default=True,
              help="Accept CredSSP (WinRM Service/Auth/CredSSP, which is off by default on Windows).")
@click.option("-v", "--verbose", is_flag=True, help="Log every request.")
@handle_errors
def serve_cmd(state_dir: Path, port: int, http_port: int, ssh_port: int, profile: str, speedup: float, seed: int,
              host_settings: tuple[str, ...], kerberos_keytab: Path | None, kerberos_realm: str | None,
              credssp: bool, verbose: bool) -> None:
    """Run a simulated Hyper-V host in the foreground until Ctrl-C."""
    import logging

    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        host_config = sim_app.parse_host_settings(host_settings)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--host-setting") from exc
    if (kerberos_keytab is None) != (kerberos_realm is None):
        raise click.BadParameter("give --kerberos-keytab and --kerberos-realm together", param_hint="--kerberos-realm")
    stop = threading.Event()

    def _on_signal(signum: int, frame: Any) -> None:
        stop.set()

    with sim_app.serve(state_dir, port=port, http_port=http_port, profile=profile, speedup=speedup, seed=seed,
                       host_config=host_config, kerberos_keytab=kerberos_keytab, kerberos_realm=kerberos_realm,
                       credssp=credssp, ssh_port=ssh_port) as served:
        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)
        click.echo("=" * 72)
        click.echo(f"  {served.banner}")
        click.echo("=" * 72)
        click.echo(f"  HTTPS (Basic/NTLM):             {served.https_uri}")
        click.echo(f"  HTTP  (NTLM + encryption only): {served.http_uri}")
        click.echo(f"  user:                           {served.username}")
        click.echo(f"  password:                       in {served.endpoint_file} (readable by you only)")
        click.echo(f"  certificate:                    {served.cert_path}")
        click.echo(f"  SHA-256 fingerprint:            {served.fingerprint}")
        if kerberos_realm:
            admin = served.username.rsplit("\\", 1)[-1]
            click.echo(f"  Kerberos:                       {admin}@{kerberos_realm}, SPN host/localhost "
                       f"(keytab {kerberos_keytab})")
        click.echo(f"  CredSSP:                        {'accepted' if credssp else 'off (as on Windows)'}")
        click.echo(f"  SSH (powershell subsystem):     {served.ssh_uri}")
        click.echo(f"  SSH host key:                   {served.ssh_host_key_fingerprint}")
        click.echo(f"  SSH client key:                 {served.ssh_client_key}")
        click.echo(f"  profile:                        {profile} (speedup {speedup}), fault seed {seed}")
        click.echo(f"  state:                          {state_dir}")
        click.echo("Press Ctrl-C to stop.", nl=True)
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    click.echo("simulator stopped; state kept in " + str(state_dir))


@sim_group.command("reset")
@STATE_OPTION
@click.option("--seed", default=None, type=int, help="Reseed the fault plan.")
@handle_errors
def reset_cmd(state_dir: Path, seed: int | None) -> None:
    """Reset a running simulator to a fresh host (also clears faults and counters)."""
    client = sim_app.control(state_dir)
    sim_app.call(client.reset, seed)
    click.echo("simulated host reset")


@sim_group.command("counters")
@STATE_OPTION
@click.option("--reset", "reset", is_flag=True, help="Zero the counters after reading them.")
@handle_errors
def counters_cmd(state_dir: Path, reset: bool) -> None:
    """Print a running simulator's counters as JSON."""
    client = sim_app.control(state_dir)
    click.echo(json.dumps(sim_app.call(client.counters), indent=2, sort_keys=True))
    if reset:
        sim_app.call(client.reset_counters)


@sim_group.command("clock")
@STATE_OPTION
@handle_errors
def clock_cmd(state_dir: Path) -> None:
    """Print the modeled-time report of a running simulator."""
    click.echo(json.dumps(sim_app.call(sim_app.control(state_dir).clock), indent=2, sort_keys=True))


@sim_group.group("fault")
def fault_group() -> None:
    """Inject faults into a running simulator (reproducible from the plan's seed)."""


@fault_group.command("add")
@STATE_OPTION
@click.argument("kind", type=click.Choice(["drop_connection", "wsman_fault", "http_500", "slow_receive",
                                           "cmdlet_fail", "guest_reboot", "guest_ignores_shutdown", "hold"]))
@click.option("--match", "match", multiple=True, metavar="KEY=VALUE",
              help="What the fault matches, e.g. action=Receive, cmdlet=Start-VM, vm=web01, step=image-pull.")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="Fault parameters, e.g. seconds=5, code=2150858770, message=..., when=before|after|any.")
@click.option("--after", default=1, show_default=True, type=click.IntRange(min=1),
              help="Fire on the N-th matching event.")
@click.option("--times", default=1, show_default=True, type=click.IntRange(min=0), help="How often (0: always).")
@click.option("--probability", default=None, type=click.FloatRange(0, 1), help="Fire at random instead.")
@handle_errors
def fault_add_cmd(state_dir: Path, kind: str, match: tuple[str, ...], params: tuple[str, ...], after: int,
                  times: int, probability: float | None) -> None:
    """Add a fault rule."""
    client = sim_app.control(state_dir)
    match_map = {k: str(v) for k, v in _pairs(match, "--match").items()}
    result = sim_app.call(client.add_fault, kind, match_map, after=after, times=times, probability=probability,
                   **_pairs(params, "--param"))
    click.echo(json.dumps(result, indent=2, sort_keys=True))


@fault_group.command("clear")
@STATE_OPTION
@click.option("--seed", default=None, type=int, help="Reseed the fault plan.")
@handle_errors
def fault_clear_cmd(state_dir: Path, seed: int | None) -> None:
    """Remove every fault rule."""
    sim_app.call(sim_app.control(state_dir).clear_faults, seed)
    click.echo("faults cleared")


@fault_group.command("list")
@STATE_OPTION
@handle_errors
def fault_list_cmd(state_dir: Path) -> None:
    """Show the fault rules and the faults that fired."""
    click.echo(json.dumps(sim_app.call(sim_app.control(state_dir).faults), indent=2, sort_keys=True))
