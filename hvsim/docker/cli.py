"""The docker CLI inside a simulated guest: argument parsing and output like the real client's.

``docker(world, vm, guest, argv) -> CliResult`` models ``& docker @argv`` run over PowerShell Direct:
stdout lines, stderr lines and the exit code (125 for errors before the container ran, 1 for
client/daemon errors, the container's own code otherwise). Tables are laid out like docker's
tabwriter (minimum width 10, padding 3). docker.exe must be installed (on the machine PATH);
the daemon must run, else the client's "error during connect" text.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hvsim.docker import errors as E
from hvsim.docker.models import engine as C
from hvsim.docker.models import registry as R
from hvsim.docker.models.records import Container
from hvsim.docker.models.releases import MIN_API_VERSION, api_version_for, engine_release, go_version_for
from hvsim.powershell.errors import command_not_found

if TYPE_CHECKING:
    from hvsim.world import World


@dataclass
class CliResult:
    """A docker invocation's streams and exit code."""

    exit_code: int = 0
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)


class _Usage(Exception):
    def __init__(self, text: str, code: int = 125) -> None:
        super().__init__(text)
        self.text = text
        self.code = code


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """text/tabwriter(minwidth 10, tabwidth 1, padding 3): every column but the last is padded."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    out = []
    for r in [headers, *rows]:
        cells = [r[i].ljust(max(10, widths[i] + 3)) if i < len(r) - 1 else r[i] for i in range(len(r))]
        out.append("".join(cells).rstrip())
    return out


def _port_text(spec: str) -> str:
    """-p 8080:80 -> "0.0.0.0:8080->80/tcp" (how docker ps shows a published port)."""
    proto = "tcp"
    if "/" in spec:
        spec, proto = spec.rsplit("/", 1)
    parts = spec.split(":")
    if len(parts) == 1:
        return f"{parts[0]}/{proto}"
    host_ip = parts[0] if len(parts) == 3 else "0.0.0.0"  # noqa: S104 - docker's own display of "all addresses"
    return f"{host_ip}:{parts[-2]}->{parts[-1]}/{proto}"


def _ellipsis(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "\u2026"


_BOOL_FLAGS = {"-i": "interactive", "--interactive": "interactive", "-t": "tty", "--tty": "tty",
               "-d": "detach", "--detach": "detach", "--rm": "remove"}
_VALUE_FLAGS = {"--name": "name", "--isolation": "isolation", "-e": "env", "--env": "env", "-p": "ports",
                "--publish": "ports", "-m": "memory", "--memory": "memory", "-h": "hostname",
                "--hostname": "hostname", "-w": "workdir", "--workdir": "workdir", "--entrypoint": "entrypoint",
                "-v": "volume", "--volume": "volume", "--network": "network", "--cpus": "cpus",
                "--user": "user", "-u": "user", "--label": "label", "-l": "label"}
# docker create has run's container options but no -d (it attaches nothing), and models -q (no pull progress).
_CREATE_BOOL_FLAGS = {**{k: v for k, v in _BOOL_FLAGS.items() if v != "detach"}, "-q": "quiet", "--quiet": "quiet"}


# Flags the real docker CLI (27.x) has for the commands modelled here, beyond the ones modelled: the simulator
# must not call them unknown (docker would accept them); it says they are not modelled instead.
_REAL_FLAGS: dict[str, frozenset[str]] = {k: frozenset(v.split()) for k, v in {
    "run": "--add-host --annotation -a --attach --blkio-weight --cap-add --cap-drop --cgroup-parent --cgroupns "
           "--cidfile --cpu-count --cpu-percent --cpu-period --cpu-quota --cpu-shares -c --cpuset-cpus "
           "--cpuset-mems --detach-keys --device --disable-content-trust --dns --dns-option --dns-search "
           "--domainname --env-file --expose --gpus --group-add --health-cmd --health-interval --health-retries "
           "--health-start-period --health-timeout --init --io-maxbandwidth --io-maxiops --ip --ip6 --ipc "
           "--label-file --link --log-driver --log-opt --mac-address --memory-reservation --memory-swap "
           "--mount --network-alias --no-healthcheck --oom-kill-disable --pid --pids-limit --platform "
           "--privileged -P --publish-all --pull -q --quiet --read-only --restart --runtime --security-opt "
           "--shm-size --sig-proxy --stop-signal --stop-timeout --storage-opt --tmpfs --ulimit --userns --uts "
           "--volume-driver --volumes-from",
    # cli/command/container/create.go (27.x): run's flags but -d, --detach-keys and --sig-proxy (run.go's own).
    "create": "--add-host --annotation -a --attach --blkio-weight --cap-add --cap-drop --cgroup-parent --cgroupns "
              "--cidfile --cpu-count --cpu-percent --cpu-period --cpu-quota --cpu-shares -c --cpuset-cpus "
              "--cpuset-mems --device --disable-content-trust --dns --dns-option --dns-search --domainname "
              "--env-file --expose --gpus --group-add --health-cmd --health-interval --health-retries "
              "--health-start-period --health-timeout --init --io-maxbandwidth --io-maxiops --ip --ip6 --ipc "
              "--label-file --link --log-driver --log-opt --mac-address --memory-reservation --memory-swap --mount "
              "--network-alias --no-healthcheck --oom-kill-disable --pid --pids-limit --platform --privileged -P "
              "--publish-all --pull --read-only --restart --runtime --security-opt --shm-size --stop-signal "
              "--stop-timeout --storage-opt --tmpfs --ulimit --userns --uts --volume-driver --volumes-from",
    "ps": "-f --filter --format -n --last -l --latest -s --size",
    "images": "--digests -f --filter --format --tree",
    "start": "--detach-keys --checkpoint --checkpoint-dir",
    "attach": "--detach-keys",
    "exec": "-d --detach --detach-keys -e --env --env-file --privileged -u --user -w --workdir",
    "logs": "--details --since -n --tail --until",
    "rm": "-l --link",
    "pull": "--platform --disable-content-trust -a --all-tags",
    "search": "--format",
    "commit": "",
    "rmi": "",
}.items()}


def _not_modelled_flag(cmd: str, flag: str) -> _Usage:
    return _Usage(f"docker {cmd} {flag}: a real docker flag that the simulated guest does not model; it is not "
                  "modelled by the simulator.", 1)


def parse_flags(cmd: str, args: list[str], bools: dict[str, str], values: dict[str, str],
                stop_at_positional: bool = True) -> tuple[dict[str, Any], list[str]]:
    """docker's pflag parsing: combined short flags (-dit), --flag=value, flags stop at the first positional."""
    opts: dict[str, Any] = {}
    rest: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if rest and stop_at_positional:
            rest.append(a)
            i += 1
            continue
        if a == "--":
            rest.extend(args[i + 1:])
            break
        if a.startswith("--"):
            name, eq, val = a.partition("=")
            if name in bools:
                opts[bools[name]] = val.lower() != "false" if eq else True
            elif name in values:
                if not eq:
                    if i + 1 >= len(args):
                        raise _Usage(E.flag_needs_argument(cmd, name))
                    i += 1
                    val = args[i]
                opts.setdefault(values[name], []).append(val)
            elif name in _REAL_FLAGS.get(cmd, frozenset()):
                raise _not_modelled_flag(cmd, name)
            else:
                raise _Usage(E.unknown_flag(cmd, name))
        elif a.startswith("-") and len(a) > 1:
            letters = a[1:]
            j = 0
            while j < len(letters):
                flag = "-" + letters[j]
                if flag in bools:
                    opts[bools[flag]] = True
                elif flag in values:
                    val = letters[j + 1:]
                    if not val:
                        if i + 1 >= len(args):
                            raise _Usage(E.flag_needs_argument(cmd, flag, letters[j]))
                        i += 1
                        val = args[i]
                    opts.setdefault(values[flag], []).append(val.removeprefix("="))
                    break
                elif flag in _REAL_FLAGS.get(cmd, frozenset()):
                    raise _not_modelled_flag(cmd, flag)
                else:
                    raise _Usage(E.unknown_shorthand(cmd, letters[j], a))
                j += 1
        else:
            rest.append(a)
        i += 1
    return opts, rest


def _requires(cmd: str, usage: str, summary: str, n: int, got: int, exact: bool = False) -> None:
    if (exact and got != n) or got < n:
        raise _Usage(E.requires_arguments(cmd, usage, summary, n, exact=exact), E.EXIT_ERROR)


def _last(opts: dict[str, Any], key: str) -> str | None:
    vals = opts.get(key)
    return str(vals[-1]) if vals else None


def _run_options(opts: dict[str, Any], rest: list[str]) -> C.RunOptions:
    """The container options docker run and docker create share (IMAGE [COMMAND] [ARG...] in ``rest``)."""
    return C.RunOptions(rest[0], rest[1:], bool(opts.get("interactive")), bool(opts.get("tty")),
                        bool(opts.get("detach")), bool(opts.get("remove")), _last(opts, "name"),
                        _last(opts, "isolation"), list(opts.get("env", [])), list(opts.get("ports", [])),
                        entrypoint=_last(opts, "entrypoint"), hostname=_last(opts, "hostname"),
                        user=_last(opts, "user"))


def _create_query(opts: dict[str, Any]) -> dict[str, str] | None:
    """POST /containers/create's query: the name, when one was given."""
    name = _last(opts, "name")
    return {"name": name} if name else None


class _Cli:
    def __init__(self, world: World, vm: Any, guest: Any) -> None:
        self.world = world
        self.vm = vm
        self.guest = guest
        self.ch = C.host_of(guest)
        self.res = CliResult()
        self.engine_version = C.engine_version_of(guest)
        self.api = api_version_for(self.engine_version)
        self.release = engine_release(self.engine_version)  # docker.exe and dockerd come from the same zip

    def out(self, *lines: str) -> None:
        self.res.stdout.extend(lines)

    def err(self, *lines: str) -> None:
        self.res.stderr.extend(lines)

    def daemon_up(self) -> bool:
        return C.daemon_running(self.world, self.vm, self.guest)

    def need_daemon(self, method: str, path: str, query: dict[str, str] | None = None, *,
                    negotiates: bool = False) -> None:
        """The command's first API call: the client's connection error when dockerd is down."""
        if not self.daemon_up():
            raise _Usage(E.connect_error(self.engine_version, method, path, query, negotiates=negotiates), 1)

    def remove_each(self, refs: list[str], path: Callable[[str], str], query: dict[str, str],
                    remove: Callable[[str], str | None]) -> None:
        """docker rm / rmi: ``remove(ref)`` for each reference in turn (its error text, or None); with dockerd
        down, the client's connection error for that reference's ``DELETE path(ref)``. The errors are printed
        together at the end (exit 1)."""
        errors: list[str] = []
        for ref in refs:
            if not self.daemon_up():
                errors.append(E.connect_error(self.engine_version, "DELETE", path(ref), query or None))
                continue
            error = remove(ref)
            if error is not None:
                errors.append(error)
        if errors:
            self.err(*"\n".join(errors).split("\n"))
            self.res.exit_code = 1

    # ------------------------------------------------------------------ commands

    def run(self, args: list[str]) -> None:
        opts, rest = parse_flags("run", args, _BOOL_FLAGS, _VALUE_FLAGS)
        _requires("run", "run [OPTIONS] IMAGE [COMMAND] [ARG...]", "Create and run a new container from an image", 1,
                  len(rest))
        # cli/command/container/run.go: the TTY check (skipped with -d, which attaches nothing) and the reference
        # (create.go) come before the client talks to the daemon.
        if opts.get("tty") and opts.get("interactive") and not opts.get("detach"):
            raise _Usage(E.MSG_NOT_A_TTY, 1)
        try:
            R.parse_reference(rest[0], self.release)
        except R.ReferenceError as exc:
            self.err(*E.run_error_lines(exc.text, with_help=True))
            self.res.exit_code = E.EXIT_RUN_FAILED
            return
        if not self.daemon_up():
            text = E.connect_error(self.engine_version, "POST", "containers/create", _create_query(opts),
                                   negotiates=True)
            self.err(*E.run_error_lines(text, with_help=True))
            self.res.exit_code = E.EXIT_RUN_FAILED
            return
        outcome = C.run_container(self.world, self.vm, self.guest, _run_options(opts, rest))
        self.out(*outcome.stdout)
        self.err(*outcome.stderr)
        self.res.exit_code = outcome.exit_code

    def create(self, args: list[str]) -> None:
        opts, rest = parse_flags("create", args, _CREATE_BOOL_FLAGS, _VALUE_FLAGS)
        _requires("create", "create [OPTIONS] IMAGE [COMMAND] [ARG...]", "Create a new container", 1, len(rest))
        # cli/command/container/create.go (27.x): no TTY check (create attaches nothing; -i/-t are recorded for a
        # later start or attach); the reference, the pull and the daemon's answer fail createContainer, whose
        # error runCreate returns as it is (E.create_error_lines).
        try:
            R.parse_reference(rest[0], self.release)
        except R.ReferenceError as exc:
            self.err(*E.create_error_lines(exc.text))
            self.res.exit_code = E.EXIT_ERROR
            return
        if not self.daemon_up():
            self.err(*E.create_error_lines(E.connect_error(self.engine_version, "POST", "containers/create",
                                                           _create_query(opts), negotiates=True)))
            self.res.exit_code = E.EXIT_ERROR
            return
        created = C.create_container(self.world, self.vm, self.guest, _run_options(opts, rest),
                                     quiet=bool(opts.get("quiet")))
        self.err(*created.stderr)
        if created.container is None:
            self.err(*E.create_error_lines(created.error or ""))
            self.res.exit_code = E.EXIT_ERROR
            return
        self.out(created.container.id)  # the full id, as create.go prints response.ID

    def ps(self, args: list[str]) -> None:
        opts, _ = parse_flags("ps", args, {"-a": "all", "--all": "all", "-q": "quiet", "--quiet": "quiet",
                                           "--no-trunc": "notrunc"}, {})
        self.need_daemon("GET", "containers/json", {"all": "1"} if opts.get("all") else None)
        now = self.world.clock.now()
        cs = sorted(self.ch.containers.values(), key=lambda c: -float(c.created))
        if not opts.get("all"):
            cs = [c for c in cs if c.state == "running"]
        if opts.get("quiet"):
            self.out(*[c.id if opts.get("notrunc") else c.id[:12] for c in cs])
            return
        rows = []
        for c in cs:
            cmd = json.dumps(" ".join(c.command), ensure_ascii=False)
            rows.append([c.id if opts.get("notrunc") else c.id[:12], c.image_ref,
                         cmd if opts.get("notrunc") else _ellipsis(cmd, 20),
                         C.human_duration(now - float(c.created)) + " ago", C.container_status(c, now),
                         ", ".join(_port_text(p) for p in c.ports), c.name])
        self.out(*table(["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"], rows))

    def _container(self, ref: str) -> Container:
        c = C.find_container(self.ch, ref)
        if c is None:
            raise _Usage(E.from_daemon(E.no_such_container(ref)), 1)
        return c

    def start(self, args: list[str]) -> None:
        opts, rest = parse_flags("start", args, {"-a": "attach", "--attach": "attach", "-i": "interactive",
                                                 "--interactive": "interactive"}, {}, stop_at_positional=False)
        _requires("start", "start [OPTIONS] CONTAINER [CONTAINER...]", "Start one or more stopped containers", 1,
                  len(rest))
        attach, stdin = bool(opts.get("attach")), bool(opts.get("interactive"))
        if attach or stdin:
            # cli/command/container/start.go: attaching starts one container, after inspecting it.
            if len(rest) > 1:
                raise _Usage(E.START_ATTACH_MANY, E.EXIT_ERROR)
            self.need_daemon("GET", f"containers/{rest[0]}/json")
            c = self._container(rest[0])
            if c.state == "running":
                raise _Usage("The simulated docker CLI does not model attaching to a running container: the call "
                             "would stream until the container exits. Read its output with docker logs.", 1)
            if c.tty and stdin:  # CheckTty(attachStdin, tty): only when stdin is attached
                raise _Usage(E.MSG_NOT_A_TTY, 1)
            run, error, _ = C.start_container(self.world, self.vm, self.guest, c,
                                              stdin_attached=stdin and bool(c.interactive))
            if error:
                C.reap(self.guest, c)
                raise _Usage(E.from_daemon(error), 1)
            assert run is not None
            if run.long_running:
                raise _Usage("The simulated docker CLI does not model attaching to a container that keeps running: "
                             "the call would stream until it exits. Start it without -a and read docker logs.", 1)
            self.out(*run.output)
            C.reap(self.guest, c)
            self.res.exit_code = int(c.exit_code or 0)
            return
        failed = []
        for ref in rest:
            if not self.daemon_up():
                self.err(E.connect_error(self.engine_version, "POST", f"containers/{ref}/start"))
                failed.append(ref)
                continue
            found = C.find_container(self.ch, ref)
            if found is None:
                self.err(E.from_daemon(E.no_such_container(ref)))
                failed.append(ref)
                continue
            if found.state != "running":
                _, error, _ = C.start_container(self.world, self.vm, self.guest, found)
                C.reap(self.guest, found)
                if error:
                    self.err(*E.from_daemon(error).split("\n"))
                    failed.append(ref)
                    continue
            self.out(ref)
        if failed:
            self.err(E.failed_to_start(failed))
            self.res.exit_code = 1

    def stop(self, args: list[str]) -> None:
        _, rest = parse_flags("stop", args, {}, {"-t": "time", "--time": "time", "-s": "signal"},
                              stop_at_positional=False)
        _requires("stop", "stop [OPTIONS] CONTAINER [CONTAINER...]", "Stop one or more running containers", 1,
                  len(rest))
        self.need_daemon("POST", f"containers/{rest[0]}/stop")
        for ref in rest:
            c = C.find_container(self.ch, ref)
            if c is None:
                self.err(E.from_daemon(E.no_such_container(ref)))
                self.res.exit_code = 1
                continue
            if c.running:
                c.exit(C.EXIT_SHUTDOWN, self.world.clock.now())
                c.paused = False
                C.reap(self.guest, c)
            self.out(ref)

    def attach(self, args: list[str]) -> None:
        opts, rest = parse_flags("attach", args, {"--no-stdin": "nostdin", "--sig-proxy": "sig"}, {})
        _requires("attach", "attach [OPTIONS] CONTAINER", "Attach local standard input, output, and error streams "
                  "to a running container", 1, len(rest), exact=True)
        self.need_daemon("GET", f"containers/{rest[0]}/json")
        c = self._container(rest[0])
        if c.state != "running":
            raise _Usage(E.ATTACH_STOPPED, E.EXIT_ERROR)
        if c.paused:
            raise _Usage(E.ATTACH_PAUSED, E.EXIT_ERROR)
        if c.tty and not opts.get("nostdin"):  # RunAttach: CheckTty(!NoStdin, Config.Tty)
            raise _Usage(E.MSG_NOT_A_TTY, 1)
        if c.interactive and c.stdin_once and not opts.get("nostdin"):
            # The client's stdin (empty over PowerShell Direct) reaches end-of-file at once; for a container
            # created with -i in the foreground that closes the container's stdin (StdinOnce), and the shell that
            # was waiting on it exits: attach returns with its exit code.
            c.exit(0, self.world.clock.now())
            C.reap(self.guest, c)
            return
        raise _Usage("The simulated docker CLI does not model attaching to a running container: the call would "
                     "stream until the container exits. Read its output with docker logs.", 1)

    def exec_(self, args: list[str]) -> None:
        opts, rest = parse_flags("exec", args, {"-i": "interactive", "--interactive": "interactive", "-t": "tty",
                                                "--tty": "tty", "-d": "detach", "--detach": "detach"},
                                 {"-e": "env", "--env": "env", "-u": "user", "--user": "user", "-w": "workdir",
                                  "--workdir": "workdir"})
        _requires("exec", "exec [OPTIONS] CONTAINER COMMAND [ARG...]", "Execute a command in a running container",
                  2, len(rest))
        # cli/command/container/exec.go: inspect first (a missing container wins), then the TTY check unless -d.
        self.need_daemon("GET", f"containers/{rest[0]}/json")
        c = self._container(rest[0])
        if opts.get("tty") and opts.get("interactive") and not opts.get("detach"):
            raise _Usage(E.MSG_NOT_A_TTY, 1)
        if c.state != "running":
            raise _Usage(E.from_daemon(E.not_running(c.id)), E.EXIT_ERROR)
        if c.paused:
            raise _Usage(E.from_daemon(E.exec_paused(c.id)), E.EXIT_ERROR)
        run = C.exec_in(self.world, self.vm, self.guest, c, rest[1:], bool(opts.get("interactive")))
        if run.not_found:
            error = C.create_process_error(dataclasses.replace(c, command=rest[1:]), self.engine_version)
            raise _Usage(E.from_daemon(error), E.EXIT_CANNOT_INVOKE)
        if run.not_modelled:
            raise _Usage(run.output[0], 125)
        if run.long_running and not opts.get("detach"):
            raise _Usage("The simulated docker CLI does not model an exec process that keeps running; use -d.", 1)
        if not opts.get("detach"):
            self.out(*run.output)
            self.res.exit_code = run.exit_code

    def logs(self, args: list[str]) -> None:
        opts, rest = parse_flags("logs", args, {"-f": "follow", "--follow": "follow", "-t": "timestamps"},
                                 {"-n": "tail", "--tail": "tail", "--since": "since", "--until": "until"})
        _requires("logs", "logs [OPTIONS] CONTAINER", "Fetch the logs of a container", 1, len(rest), exact=True)
        self.need_daemon("GET", f"containers/{rest[0]}/json")
        c = self._container(rest[0])
        lines = list(c.logs)
        tail = _last(opts, "tail")
        if tail and tail != "all" and tail.isdigit():
            lines = lines[-int(tail):] if int(tail) else []
        self.out(*lines)

    def rm(self, args: list[str]) -> None:
        opts, rest = parse_flags("rm", args, {"-f": "force", "--force": "force", "-v": "volumes"}, {},
                                 stop_at_positional=False)
        _requires("rm", "rm [OPTIONS] CONTAINER [CONTAINER...]", "Remove one or more containers", 1, len(rest))
        force = bool(opts.get("force"))
        # cli/command/container/rm.go (27.x): with -f a missing container is reported on stderr at once and is not
        # an error (exit 0); every other error is collected and printed at the end (exit 1).

        def remove(ref: str) -> str | None:
            c = C.find_container(self.ch, ref)
            if c is None:
                if not force:
                    return E.from_daemon(E.no_such_container(ref))
                self.err(E.from_daemon(E.no_such_container(ref)))
                return None
            if c.state == "running" and not force:
                return E.from_daemon(E.cannot_remove(c.name, paused=c.paused))
            self.ch.containers.pop(c.id, None)
            self.out(ref)
            return None

        self.remove_each(rest, lambda ref: f"containers/{ref.strip('/')}", {"force": "1"} if force else {}, remove)

    def commit(self, args: list[str]) -> None:
        opts, rest = parse_flags("commit", args, {"-p": "pause", "--pause": "pause"},
                                 {"-m": "message", "--message": "message", "-a": "author", "--author": "author",
                                  "-c": "change", "--change": "change"})
        _requires("commit", "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]", "Create a new image from a "
                  "container's changes", 1, len(rest))
        if opts.get("change"):
            raise _Usage("The simulated docker CLI does not model docker commit --change (Dockerfile instructions); "
                         "it is not modelled by the simulator.", 1)
        repo, tag = "", ""
        if len(rest) > 1:
            try:
                name, tagged, digest = R.parse_reference(rest[1], self.release)
            except R.ReferenceError as exc:
                raise _Usage(exc.text, 1) from None
            if digest:
                raise _Usage(E.TAG_WITH_DIGEST, E.EXIT_ERROR)
            repo, tag = R.familiar(name), tagged or "latest"
        self.need_daemon("POST", "commit", {"author": _last(opts, "author") or "", "comment": _last(opts, "message")
                                            or "", "container": rest[0], "repo": repo, "tag": tag})
        c = self._container(rest[0])
        try:
            new_id = C.commit_container(self.world, self.vm, self.guest, c, rest[1] if len(rest) > 1 else None)
        except E.DockerError as exc:
            raise _Usage(exc.text, exc.exit_code) from None
        self.out(new_id)

    def images(self, args: list[str]) -> None:
        opts, rest = parse_flags("images", args, {"-a": "all", "--all": "all", "-q": "quiet", "--quiet": "quiet",
                                                  "--digests": "digests", "--no-trunc": "notrunc"}, {})
        self.need_daemon("GET", "images/json", negotiates=True)
        now = self.world.clock.now()
        rows = []
        for img in sorted(self.ch.images.values(), key=lambda i: -C.iso_to_epoch(i.created)):
            if not img.tags and not opts.get("all") and C.image_children(self.ch, img):
                continue  # an untagged parent of other images: an intermediate image, shown with -a only
            tags = img.tags or ["<none>:<none>"]
            for t in tags:
                repo, _, tag = t.rpartition(":")
                shown_repo = R.familiar(repo) if repo != "<none>" else repo
                if rest and not any(R.split_reference(r)[0] == repo for r in rest):
                    continue
                rows.append([shown_repo, tag, img.id if opts.get("notrunc") else img.id[7:19],
                             C.human_duration(now - C.iso_to_epoch(img.created)) + " ago",
                             C.human_size(img.size)])
        if opts.get("quiet"):
            self.out(*dict.fromkeys(r[2] for r in rows))
            return
        self.out(*table(["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"], rows))

    def pull(self, args: list[str]) -> None:
        opts, rest = parse_flags("pull", args, {"-q": "quiet", "--quiet": "quiet", "-a": "all"},
                                 {"--platform": "platform"})
        _requires("pull", "pull [OPTIONS] NAME[:TAG|@DIGEST]", "Download an image from a registry", 1, len(rest),
                  exact=True)
        ref = rest[0]
        try:
            name, tagged, digest = R.parse_reference(ref, self.release)
        except R.ReferenceError as exc:  # cli/command/image/pull.go: reference.ParseNormalizedNamed
            raise _Usage(exc.text, 1) from None
        if not name:
            raise _Usage(E.hex_repository(ref), E.EXIT_ERROR)
        if not tagged and not digest:
            self.out("Using default tag: latest")
        self.need_daemon("POST", "images/create", {"fromImage": R.familiar(name), "tag": tagged or digest or "latest"})
        try:
            pulled = C.pull_image(self.world, self.vm, self.guest, ref)
        except R.RegistryError as exc:
            if exc.before_stream:
                raise _Usage(E.from_daemon(exc.text), E.EXIT_ERROR) from None
            repo, tag = R.split_reference(ref)
            self.out(f"{tag}: Pulling from {repo.split('/', 1)[-1]}")
            raise _Usage(exc.text, 1) from None
        repo, tag = R.split_reference(ref)
        full = f"{repo}:{tag}" if repo.startswith(R.MCR) else f"docker.io/{R.familiar(repo)}:{tag}"
        self.out(*([] if opts.get("quiet") else pulled.lines), full)

    def search(self, args: list[str]) -> None:
        opts, rest = parse_flags("search", args, {"--no-trunc": "notrunc"}, {"--limit": "limit", "-f": "filter",
                                                                             "--filter": "filter"})
        _requires("search", "search [OPTIONS] TERM", "Search Docker Hub for images", 1, len(rest), exact=True)
        self.need_daemon("GET", "images/search", {"term": rest[0], **({"limit": str(_last(opts, "limit"))}
                                                                       if _last(opts, "limit") else {})})
        limit = int(_last(opts, "limit") or 25)
        rows = []
        for e in R.search(rest[0], limit):
            desc = str(e["description"])
            rows.append([str(e["name"]), desc if opts.get("notrunc") else _ellipsis(desc, 45), str(e["stars"]),
                         "[OK]" if e["official"] else ""])
        self.out(*table(["NAME", "DESCRIPTION", "STARS", "OFFICIAL"], rows))

    def rmi(self, args: list[str]) -> None:
        opts, rest = parse_flags("rmi", args, {"-f": "force", "--force": "force", "--no-prune": "noprune"}, {},
                                 stop_at_positional=False)
        _requires("rmi", "rmi [OPTIONS] IMAGE [IMAGE...]", "Remove one or more images", 1, len(rest))
        force = bool(opts.get("force"))
        # cli/command/image/remove.go: each image's records on stdout as they come, the errors joined at the end
        # (exit 1); with -f an image that does not exist is not an error.

        def remove(ref: str) -> str | None:
            try:
                self.out(*C.remove_image(self.world, self.vm, self.guest, ref, force=force,
                                         prune=not opts.get("noprune")))
            except E.DockerError as exc:
                if not (force and exc.not_found):
                    return exc.text
            return None

        query = {**({"force": "1"} if force else {}), **({"noprune": "1"} if opts.get("noprune") else {})}
        self.remove_each(rest, lambda ref: f"images/{ref}", query, remove)

    def version(self, args: list[str]) -> None:
        v = self.engine_version
        go = go_version_for(v)
        self.out("Client:", f" Version:           {v}", f" API version:       {self.api}",
                 f" Go version:        {go}", f" Git commit:        {C._git_commit(v, 'cli')}",
                 " Built:             Fri Sep 20 11:42:27 2024", " OS/Arch:           windows/amd64",
                 " Context:           default")
        if not self.daemon_up():
            self.res.stderr.append(E.connect_error(self.engine_version, "GET", "version"))
            self.res.exit_code = 1
            return
        self.out("", "Server: Docker Engine - Community", " Engine:", f"  Version:          {v}",
                 f"  API version:      {self.api} (minimum version {MIN_API_VERSION})",
                 f"  Go version:       {go}", f"  Git commit:       {C._git_commit(v, 'engine')}",
                 "  Built:            Fri Sep 20 11:41:19 2024", "  OS/Arch:          windows/amd64",
                 "  Experimental:     false")

    def info(self, args: list[str]) -> None:
        self.out("Client:", f" Version:    {self.engine_version}", " Context:    default", " Debug Mode: false", "")
        if not self.daemon_up():
            # cli/command/system/info.go prettyPrintInfo: the server's error as "ERROR: ...", then the command fails.
            self.out("Server:")
            self.err(f"ERROR: {E.connect_error(self.engine_version, 'GET', 'info')}", "errors pretty printing info")
            self.res.exit_code = 1
            return
        i = C.engine_info(self.world, self.vm, self.ch, self.engine_version)
        mem_gib = i["MemTotal"] / 1024**3
        self.out("Server:", f" Containers: {i['Containers']}", f"  Running: {i['ContainersRunning']}",
                 f"  Paused: {i['ContainersPaused']}", f"  Stopped: {i['ContainersStopped']}",
                 f" Images: {i['Images']}",
                 f" Server Version: {i['ServerVersion']}", " Storage Driver: windowsfilter",
                 *[f"  {k}: {v}" for k, v in i["DriverStatus"]], " Logging Driver: json-file", " Plugins:",
                 "  Volume: local",
                 "  Network: " + " ".join(i["Plugins"]["Network"]), "  Log: " + " ".join(i["Plugins"]["Log"]),
                 " Swarm: inactive", f" Default Isolation: {i['Isolation']}", f" Kernel Version: {i['KernelVersion']}",
                 f" Operating System: {i['OperatingSystem']}", " OSType: windows", " Architecture: x86_64",
                 f" CPUs: {i['NCPU']}", f" Total Memory: {mem_gib:.4g}GiB", f" Name: {i['Name']}", f" ID: {i['ID']}",
                 f" Docker Root Dir: {i['DockerRootDir']}", " Debug Mode: false", " Experimental: false",
                 " Insecure Registries:", *[f"  {cidr}" for cidr in i["RegistryConfig"]["InsecureRegistryCIDRs"]],
                 " Live Restore Enabled: false")

    def network(self, args: list[str]) -> None:
        if not args or args[0] not in ("ls", "list", "inspect"):
            raise _Usage("The simulated docker CLI models `docker network ls` and `docker network inspect` only.",
                         1)
        self.need_daemon("GET", "networks" if args[0] in ("ls", "list") else f"networks/{(args[1:] or [''])[0]}")
        nat_id = C.network_id(self.vm)
        none_id = C.network_id(self.vm)[::-1]
        if args[0] in ("ls", "list"):
            self.out(*table(["NETWORK ID", "NAME", "DRIVER", "SCOPE"],
                            [[nat_id[:12], "nat", "nat", "local"], [none_id[:12], "none", "null", "local"]]))
            return
        docs = []
        for name in args[1:]:
            if name in ("nat", nat_id[: len(name)]):
                conts = {c.id: {"Name": c.name, "EndpointID": C.network_id(self.vm)[:16] + c.id[:48],
                                   "MacAddress": "00:15:5d:" + ":".join(c.id[i:i + 2] for i in (0, 2, 4)),
                                   "IPv4Address": f"{c.ip}/{self.ch.nat_subnet(self.vm).split('/')[1]}",
                                   "IPv6Address": ""}
                         for c in self.ch.containers.values() if c.state == "running"}
                docs.append({"Name": "nat", "Id": nat_id, "Created": C.epoch_to_iso(
                    (self.ch.docker.started_at if self.ch.docker else None) or 0.0), "Scope": "local", "Driver": "nat",
                    "EnableIPv6": False, "IPAM": {"Driver": "windows", "Options": None, "Config": [
                        {"Subnet": self.ch.nat_subnet(self.vm), "Gateway": self.ch.nat_gateway(self.vm)}]},
                    "Internal": False, "Attachable": False, "Ingress": False, "ConfigFrom": {"Network": ""},
                    "ConfigOnly": False, "Containers": conts,
                    "Options": {"com.docker.network.windowsshim.hnsid": C.network_id(self.vm)[:8].upper() + "-"
                                + C.network_id(self.vm)[8:12].upper(),
                                "com.docker.network.windowsshim.networkname": "nat"},
                    "Labels": {}})
            elif name == "none":
                docs.append({"Name": "none", "Id": none_id, "Scope": "local", "Driver": "null", "EnableIPv6": False,
                             "IPAM": {"Driver": "default", "Options": None, "Config": []}, "Internal": False,
                             "Containers": {}, "Options": {}, "Labels": {}})
            else:
                self.err(E.from_daemon(E.network_not_found(name)))
                self.res.exit_code = 1
        if docs or not self.res.stderr:
            self.out(*json.dumps(docs, indent=4).splitlines())

    def save(self, args: list[str]) -> None:
        opts, rest = parse_flags("save", args, {}, {"-o": "output", "--output": "output"}, stop_at_positional=False)
        _requires("save", "save [OPTIONS] IMAGE [IMAGE...]", "Save one or more images to a tar archive (streamed to "
                  "STDOUT by default)", 1, len(rest))
        output = _last(opts, "output")
        if output is None:
            raise _Usage(E.SAVE_TO_TERMINAL, E.EXIT_ERROR)
        self.need_daemon("GET", "images/get", {"names": rest[0]})
        try:
            C.save_image(self.world, self.vm, self.guest, rest[0], output)
        except E.DockerError as exc:
            raise _Usage(exc.text, exc.exit_code) from None

    def load(self, args: list[str]) -> None:
        opts, _rest = parse_flags("load", args, {"-q": "quiet", "--quiet": "quiet"}, {"-i": "input",
                                                                                     "--input": "input"})
        path = _last(opts, "input")
        if path is None:
            raise _Usage(E.LOAD_EMPTY_STDIN, E.EXIT_ERROR)
        self.need_daemon("POST", "images/load", {"quiet": "1" if opts.get("quiet") else "0"})
        try:
            self.out(*C.load_image(self.world, self.vm, self.guest, path))
        except E.DockerError as exc:
            raise _Usage(exc.text, exc.exit_code) from None

    def pause(self, args: list[str]) -> None:
        self._pause("pause", args)

    def unpause(self, args: list[str]) -> None:
        self._pause("unpause", args)

    def _pause(self, cmd: str, args: list[str]) -> None:
        _, rest = parse_flags(cmd, args, {}, {}, stop_at_positional=False)
        what = "Pause all processes within one or more containers" if cmd == "pause" else \
            "Unpause all processes within one or more containers"
        _requires(cmd, f"{cmd} CONTAINER [CONTAINER...]", what, 1, len(rest))
        # cli/command/container/pause.go: each container's error collected, printed at the end.
        errors: list[str] = []
        for ref in rest:
            if not self.daemon_up():
                errors.append(E.connect_error(self.engine_version, "POST", f"containers/{ref}/{cmd}"))
                continue
            c = C.find_container(self.ch, ref)
            if c is None:
                errors.append(E.from_daemon(E.no_such_container(ref)))
                continue
            try:
                (C.pause_container if cmd == "pause" else C.unpause_container)(self.guest, c)
            except E.DockerError as exc:
                errors.append(exc.text)
                continue
            self.out(ref)
        if errors:
            self.err(*"\n".join(errors).split("\n"))
            self.res.exit_code = 1

    def image(self, args: list[str]) -> None:
        if not args:
            raise _Usage("The simulated docker CLI models docker image ls|rm|pull|inspect|save|load.", 1)
        sub, rest = args[0], args[1:]
        if sub in ("ls", "list"):
            self.images(rest)
        elif sub in ("rm", "remove"):
            self.rmi(rest)
        elif sub == "pull":
            self.pull(rest)
        elif sub == "save":
            self.save(rest)
        elif sub == "load":
            self.load(rest)
        elif sub == "inspect":
            self.inspect_image(rest)
        else:
            raise _Usage(f"The simulated docker CLI does not model docker image {sub}.", 1)

    def inspect_image(self, args: list[str]) -> None:
        _, rest = parse_flags("image inspect", args, {}, {"-f": "format", "--format": "format"})
        self.need_daemon("GET", f"images/{(rest or [''])[0]}/json")
        docs = []
        for ref in rest:
            img = C.find_image(self.ch, ref)
            if img is None:
                self.err(E.from_daemon(E.no_such_image(ref)))
                self.res.exit_code = 1
                continue
            docs.append({"Id": img.id, "RepoTags": [C.familiar_tag(t) for t in img.tags],
                         "RepoDigests": img.digests, "Parent": img.parent,
                         "Created": img.created, "Config": img.config.to_state(), "Os": "windows",
                         "OsVersion": img.os_version, "Architecture": "amd64", "Size": img.size})
        if docs or not self.res.stderr:
            self.out(*json.dumps(docs, indent=4).splitlines())
        if self.res.stderr:
            self.res.stdout = self.res.stdout if docs else ["[]"]


_COMMANDS = {"run": _Cli.run, "create": _Cli.create, "ps": _Cli.ps, "start": _Cli.start, "stop": _Cli.stop,
             "attach": _Cli.attach, "exec": _Cli.exec_, "logs": _Cli.logs, "rm": _Cli.rm, "commit": _Cli.commit,
             "images": _Cli.images,
             "pull": _Cli.pull, "search": _Cli.search, "rmi": _Cli.rmi, "version": _Cli.version, "info": _Cli.info,
             "network": _Cli.network, "save": _Cli.save, "load": _Cli.load, "image": _Cli.image,
             "pause": _Cli.pause, "unpause": _Cli.unpause}


def docker_installed(guest: Any) -> bool:
    ch = C.host_of(guest)
    return ch.docker is not None and any(p.lower() == C.PROGRAM_FILES_DOCKER.lower() for p in ch.machine_path)


def docker(world: World, vm: Any, guest: Any, argv: list[str]) -> CliResult:
    """``& docker @argv`` in the guest. Raises PSError (CommandNotFoundException) when docker.exe is absent."""
    if not docker_installed(guest):
        raise command_not_found("docker")
    cli = _Cli(world, vm, guest)
    args = [str(a) for a in argv]
    # Global options the client accepts before the command (-H/--host, --tls*: only the local pipe is modeled).
    while args and args[0].startswith("-"):
        flag = args.pop(0)
        if flag in ("-v", "--version"):
            cli.out(f"Docker version {cli.engine_version}, build {C._git_commit(cli.engine_version, 'cli')}")
            return cli.res
        if flag in ("-H", "--host", "--context", "-c", "--config", "-l", "--log-level") and args and "=" not in flag:
            args.pop(0)
    if not args:
        cli.out("", "Usage:  docker [OPTIONS] COMMAND", "", "A self-sufficient runtime for containers")
        return cli.res
    name, rest = args[0], args[1:]
    fn = _COMMANDS.get(name)
    if fn is None:
        if name in ("container",) and rest:
            fn = _COMMANDS.get({"ls": "ps", "list": "ps"}.get(rest[0], rest[0]))
            name, rest = rest[0], rest[1:]
        if fn is None:
            cli.err(*E.unknown_command(name))
            cli.res.exit_code = 1
            return cli.res
    try:
        fn(cli, rest)
    except _Usage as exc:
        cli.err(*exc.text.split("\n"))
        cli.res.exit_code = exc.code
    return cli.res
