"""Docker's own error texts: the daemon's (dockerd, with the HCS errors it passes on) and the docker CLI's, with
the exit codes the CLI ends with.

Each text says where its wording comes from (moby, docker/cli, hcsshim sources, or a public transcript);
"unconfirmed" marks wording that could not be checked against a real engine, the most plausible phrasing. Texts
that depend on the engine release take its version ("27.3.1"): docker.exe and dockerd come from the same zip.
"""

from __future__ import annotations

import json
from urllib.parse import quote, urlencode

from hvsim.docker.models import registry as R
from hvsim.docker.models.releases import api_version_for, engine_release

# --------------------------------------------------------------------------------------------- exit codes

# docker run's exit status (docker run reference): 125 the docker command itself failed (before the container ran),
# 126 the contained command cannot be invoked, 127 it cannot be found (cli/command/container/run.go
# runStartContainerErr); 1 a client or daemon error.
EXIT_ERROR = 1
EXIT_RUN_FAILED = 125
EXIT_CANNOT_INVOKE = 126
EXIT_NOT_FOUND = 127

FROM_DAEMON = "Error response from daemon: "  # the client's prefix for an error the API answered


def from_daemon(text: str) -> str:
    """An error the daemon answered, as the client prints it."""
    return f"{FROM_DAEMON}{text}"


class DockerError(Exception):
    """A docker CLI failure: the stderr text and the exit code (``not_found``: the daemon answered 404)."""

    def __init__(self, text: str, exit_code: int, stdout: list[str] | None = None, *, not_found: bool = False) -> None:
        super().__init__(text)
        self.text = text
        self.exit_code = exit_code
        self.stdout = list(stdout or [])
        self.not_found = not_found


# --------------------------------------------------------------------------------------------- dockerd

# dockerd's fatal start error without the Containers feature (event log text quoted in
# MicrosoftDocs/Virtualization-Documentation#1270 and docker/for-win#10644).
MSG_NO_CONTAINERS_FEATURE = ("failed to start daemon: a required service is not installed, ensure the Containers "
                             "feature is installed: failed to open service hns: The specified service does not "
                             "exist as an installed service.")
# HCS refusals as dockerd reports them (hcsshim's SystemError: "<op> <id>: <message>" and its event lines), see
# hcs_system_error. Process isolation of an image of another build: microsoft/Windows-Containers#399 (Docker 24),
# dr1rrb/docker-plex-win#4 (Windows Server 2022).
MSG_OS_MISMATCH = "The container operating system does not match the host operating system."
# HCS_E_HYPERV_NOT_INSTALLED 0xc0370102 (moby/moby#40792, docker/for-win#6227).
MSG_HYPERV_NOT_INSTALLED = "The virtual machine could not be started because a required feature is not installed."
# Hyper-V installed but no hypervisor running (extensions turned off later), with HCS's event
# (microsoft/navcontainerhelper#283, Docker 18.09: "CreateComputeSystem <id>: No hypervisor is present ..."); with
# the operation named as the installed engine's hcsshim names it (no transcript of Docker 20.10+: unconfirmed).
MSG_NO_HYPERVISOR = "No hypervisor is present on this system."
EVENT_NO_HYPERVISOR = ("[Event Detail: Cannot start Hyper-V Container '{id}' since the hypervisor is not running in "
                       "the host. Provider: 17103e3f-3c6e-4677-bb17-3b267eb5be57 EventID: 12001]")
# A program missing from the image, in a utility VM: vmcomputeagent's events (jenkinsci/workflow-basic-steps-plugin
# PR 203; the same lines with other addresses in docker/for-win#6551). The return addresses and the thread id are
# those of the transcript: they vary per Windows build and run.
EVENTS_NOT_FOUND_UVM = [
    "[Event Detail:  Provider: 00000000-0000-0000-0000-000000000000]",
    "[Event Detail:  Provider: 00000000-0000-0000-0000-000000000000]",
    "[Event Detail: onecore\\vm\\compute\\management\\orchestration\\vmhostedcontainer\\processmanagement.cpp(173)"
    "\\vmcomputeagent.exe!00007FF7FC739F4B: (caller: 00007FF7FC6EE13A) Exception(6) tid(39c) 80070002 The system "
    "cannot find the file specified.\n    CallContext:[\\Bridge_ProcessMessage\\VmHostedContainer_ExecuteProcess]\n"
    " Provider: 00000000-0000-0000-0000-000000000000]",
]
MSG_FILE_NOT_FOUND = "The system cannot find the file specified."
# docker CLI's TTY check (cli/command/streams/in.go CheckTty, the Windows variant). PowerShell Direct gives
# a native command a redirected stdin, so -t with -i is refused there.
MSG_NOT_A_TTY = "the input device is not a TTY.  If you are using mintty, try prefixing the command with 'winpty'"


def daemon_json_error(path: str, detail: str) -> str:
    """dockerd: "unable to configure the Docker daemon with file <path>: <detail>"."""
    return f"unable to configure the Docker daemon with file {path}: {detail}"


def daemon_json_syntax(path: str, line: int, column: int, msg: str) -> str:
    # dockerd: "unable to configure the Docker daemon with file <path>: <Go JSON error>" (Go's wording
    # of the JSON error differs from Python's: unconfirmed detail).
    return daemon_json_error(path, f"invalid character at line {line} column {column}: {msg}")


def daemon_json_not_an_object(path: str, type_name: str) -> str:
    return daemon_json_error(path, f"json: cannot unmarshal {type_name} into Go value of type "
                                   "map[string]interface {}")


def daemon_json_unknown_keys(path: str, keys: list[str]) -> str:
    # moby daemon/config: "the following directives don't match any configuration option: %s".
    return daemon_json_error(path, f"the following directives don't match any configuration option: "
                                   f"{', '.join(keys)}")


def tls_file_missing(path: str, *, ca: bool) -> str:
    """dockerd's listener setup without one of its TLS files."""
    # docker/go-connections tlsconfig wording; Go %q doubles the backslashes (unconfirmed for
    # the exact prefix dockerd puts before it).
    what = "could not read CA certificate" if ca else "Could not load X509 key pair"
    return f"failed to load listeners: {what} {json.dumps(path)}: open {path}: {MSG_FILE_NOT_FOUND}"


def hcs_op(version: str, op: str) -> str:
    """hcsshim's name for an HCS operation in the engine ``version``: moby through 20.10 vendors hcsshim with
    "hcsshim::" names (vendor/github.com/Microsoft/hcsshim/internal/hcs/system.go), 23.0 and later "hcs::"."""
    return ("hcsshim::" if engine_release(version) < (23, 0) else "hcs::") + op


def hcs_system_error(version: str, op: str, cid: str, message: str, events: list[str] | tuple[str, ...] = ()) -> str:
    """hcs.SystemError.Error(): "<op> <id>: <message>", then one line per HCS error event.

    (20.10.0 to 20.10.6 also appended the HCS document as "(extra info: ...)": not modelled, the sim's 20.10 is
    20.10.7 or later.)"""
    return "\n".join([f"{hcs_op(version, op)} {cid}: {message}", *events])


def hcs_container_error(version: str, cid: str, op: str, message: str, code: int, command_line: str | None = None,
                        events: list[str] | tuple[str, ...] = ()) -> str:
    """hcsshim.ContainerError.Error() for a Win32 error: "container <id> encountered an error during <op>: failure
    in a Windows system call: <message> (0x<code>)" and the events. From moby 25.0 (hcsshim 0.11) a failed
    CreateProcess names the command line after the operation (docker/cli#6347)."""
    name = hcs_op(version, op)
    if command_line is not None and engine_release(version) >= (25, 0):
        name += f": {command_line}"
    return "\n".join([f"container {cid} encountered an error during {name}: failure in a Windows system call: "
                      f"{message} (0x{code:x})", *events])


def no_such_image(ref: str) -> str:
    """ErrImageDoesNotExist as moby prints it: the reference in its familiar form, a tagless name with
    ":latest" (reference.TagNameOnly), an id as given (daemon/images/errors.go)."""
    text = ref.strip()
    try:
        repo, tag, digest = R.parse_reference(text)
    except R.ReferenceError:
        return f"No such image: {text}"
    if not repo:
        return f"No such image: {digest}"
    if digest and not tag:
        return f"No such image: {R.familiar(repo)}@{digest}"
    return f"No such image: {R.familiar(repo)}:{tag or 'latest'}"


def no_such_container(ref: str) -> str:
    return f"No such container: {ref}"


NO_SPACE = "failed to register layer: There is not enough space on the disk."  # wording unconfirmed

# dockerd's wording for a file that is not an image archive (unconfirmed).
BAD_IMAGE_ARCHIVE = "Error processing tar file(exit status 1): unexpected EOF"
NO_COMMAND = "No command specified"  # daemon/create.go (no CMD or ENTRYPOINT)
# moby daemon/commit.go: "%+v does not support commit of a running container" (runtime.GOOS); a paused
# container is running too.
COMMIT_RUNNING = "windows does not support commit of a running container"


def name_in_use(name: str, other_id: str) -> str:
    """moby daemon/names.go reserveName: the text ends with a period (docker run's reportError keeps one; docker
    create prints it as it is)."""
    return (f"Conflict. The container name \"/{name}\" is already in use by container \"{other_id}\". You have to "
            f"remove (or rename) that container to be able to reuse that name.")


def not_running(cid: str) -> str:
    return f"container {cid} is not running"


# docker pause: only a Hyper-V isolated container can be paused (libcontainerd/local/local_windows.go returns
# containerd's ErrNotImplemented for a process-isolated one; daemon/pause.go wraps it); daemon/unpause.go.
def already_paused(cid: str) -> str:
    return f"Container {cid} is already paused"


def pause_not_implemented(cid: str) -> str:
    return f"cannot pause container {cid}: not implemented"


def not_paused(cid: str) -> str:
    return f"Container {cid} is not paused"


def exec_paused(cid: str) -> str:
    return f"Container {cid} is paused, unpause the container before exec"


def cannot_remove(name: str, *, paused: bool) -> str:
    """daemon/delete.go cleanupContainer: a running (or paused) container without -f."""
    why = "is paused and must be unpaused first" if paused else \
        "is running: stop the container before removing or force remove"
    return f"cannot remove container \"/{name}\": container {why}"


def image_delete_conflict(short_id: str, reason: str, *, hard: bool) -> str:
    """checkImageDeleteConflict (daemon/images/image_delete.go): hard conflicts cannot be forced."""
    force = "cannot be forced" if hard else "must be forced"
    return f"conflict: unable to delete {short_id} ({force}) - {reason}"


def reference_in_use(ref: str, container_short_id: str, image_short_id: str) -> str:
    """Untagging would leave the image dangling under a container: docker wants -f for that."""
    return (f"conflict: unable to remove repository reference {json.dumps(ref)} (must force) - container "
            f"{container_short_id} is using its referenced image {image_short_id}")


def network_not_found(name: str) -> str:
    return f"network {name} not found"


def invalid_isolation(version: str, isolation: str) -> str:
    """dockerd's answer to an unknown --isolation (runconfig/hostconfig_windows.go validateIsolation, checked when
    it decodes the create request): 17.06 to 28.x "Invalid isolation: %q. Windows supports ...", 29.0 reworded."""
    if engine_release(version) >= (29, 0):
        return f"invalid isolation ({isolation}): Windows supports 'default', 'process', or 'hyperv'"
    return f"Invalid isolation: {json.dumps(isolation)}. Windows supports 'default', 'process', or 'hyperv'"


# --------------------------------------------------------------------------------------------- docker CLI

def run_error_lines(text: str, *, with_help: bool) -> list[str]:
    """docker run's reportError: "docker: <err>." (one final period), "See 'docker run --help'." for errors before
    the container ran; an error of several lines stays several lines."""
    lines = f"docker: {text.rstrip('.')}.".split("\n")
    return [*lines, "See 'docker run --help'."] if with_help else lines


def create_error_lines(text: str) -> list[str]:
    """docker create's failure after its flags parsed: runCreate returns createContainer's error (an invalid
    reference, the pull's error, the daemon's answer to the create) and cmd/docker/docker.go prints it as it is,
    exit 1; no "docker: " prefix, no help line (those are run's reportError; cli/command/container/create.go, 27.x)."""
    return text.split("\n")


PIPE_URL = "http://%2F%2F.%2Fpipe%2Fdocker_engine"


def connect_error(version: str, method: str, path: str, query: dict[str, str] | None = None, *,
                  negotiates: bool = False) -> str:
    """The error of the docker client of ``version`` when dockerd does not listen on its named pipe
    (vendor/github.com/docker/docker/client/request.go doRequest, client.go, ping.go):

    - "error during connect: <hint>: <Go url.Error>", the url.Error being `<Method> "<url>": open
      //./pipe/docker_engine: The system cannot find the file specified.` (the method as Go spells it: Get, Post);
    - the hint: "This error may indicate that the docker daemon is not running." through 20.10 (errors.Wrap of a
      sentence, hence ".: "), "this error may indicate that the docker daemon is not running" from 23.0;
    - the URL: the API version is negotiated with a ping first; when the ping fails, clients through 25.0 fall back
      to API 1.24 (docker/for-win#11307, rancher-desktop#4412: ".../v1.24/containers/json"), 26.0 and later keep
      their own API version (docker/for-win#14975, 28.5: ".../v1.51/containers/json"), except for the calls that
      insist on the negotiation (``negotiates``: container create and exec, image list ...), which fail with the
      ping's own error, `Head ".../_ping"`.
    """
    release = engine_release(version)
    api = api_version_for(version)
    if release >= (26, 0) and negotiates:
        method, url = "HEAD", f"{PIPE_URL}/_ping"
    else:
        url = f"{PIPE_URL}/v{api if release >= (26, 0) else '1.24'}/{quote(path, safe='/:@')}"
        if query:
            url += "?" + urlencode(sorted(query.items()))
    hint = ("This error may indicate that the docker daemon is not running." if release < (23, 0)
            else "this error may indicate that the docker daemon is not running")
    return (f"error during connect: {hint}: {method[:1]}{method[1:].lower()} \"{url}\": open //./pipe/docker_engine: "
            f"The system cannot find the file specified.")


def unknown_flag(cmd: str, name: str) -> str:
    """The flag parser's error and the help hint (unconfirmed per release)."""
    return f"unknown flag: {name}\nSee 'docker {cmd} --help'."


def unknown_shorthand(cmd: str, letter: str, arg: str) -> str:
    return f"unknown shorthand flag: '{letter}' in {arg}\nSee 'docker {cmd} --help'."


def flag_needs_argument(cmd: str, name: str, letter: str | None = None) -> str:
    """pflag: a value flag at the end of the arguments (a shorthand names its letter)."""
    shown = f"'{letter}' in {name}" if letter is not None else name
    return f"flag needs an argument: {shown}\nSee 'docker {cmd} --help'."


def requires_arguments(cmd: str, usage: str, summary: str, n: int, *, exact: bool) -> str:
    """A command given too few (or, exact, other than n) arguments."""
    word = "argument" if n == 1 else "arguments"
    kind = "exactly" if exact else "at least"
    return (f"\"docker {cmd}\" requires {kind} {n} {word}.\nSee 'docker {cmd} --help'.\n\n"
            f"Usage:  docker {usage}\n\n{summary}")


def unknown_command(name: str) -> list[str]:
    # docker 26+ wording (older clients: "docker: 'x' is not a docker command."; unconfirmed per release).
    return [f"docker: unknown command: docker {name}", "", "Run 'docker --help' for more information"]


SAVE_TO_TERMINAL = "cowardly refusing to save to a terminal. Use the -o flag or redirect"
LOAD_EMPTY_STDIN = "requested load from stdin, but stdin is empty"
ATTACH_STOPPED = "You cannot attach to a stopped container, start it first"
ATTACH_PAUSED = "You cannot attach to a paused container, unpause it first"
# cli/command/container/start.go: attaching starts one container.
START_ATTACH_MANY = "you cannot start and attach multiple containers at once"
TAG_WITH_DIGEST = "refusing to create a tag with a digest reference"


def failed_to_start(refs: list[str]) -> str:
    """docker start: the containers that did not start."""
    return f"Error: failed to start containers: {', '.join(refs)}"


def hex_repository(ref: str) -> str:
    """docker pull of a 64-hex name: an id, not a repository."""
    return f"invalid reference format: repository name ({ref}) cannot be a 64-byte hexadecimal string"
