"""The WS-Management service: WinRS shell operations over PSRP runspace pools.

It takes a parsed :class:`~hvsim.wsman.soap.WSManRequest` from an authenticated client and
returns the response body (or raises WSManFault). It knows nothing of HTTP or authentication.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from hvsim.core.counters import Counters
from hvsim.core.faults import FaultPlan
from hvsim.powershell.cmdlet import Session
from hvsim.wsman.shell import PipelineHost, Shell, shell_not_found
from hvsim.wsman.soap import (
    NS,
    RESPONSE_ACTIONS,
    WSManFault,
    WSManRequest,
    action_not_supported,
    invalid_parameter,
    invalid_resource_uri,
    invalid_selectors,
    invalid_soap_body,
    x,
)

log = logging.getLogger(__name__)

POWERSHELL_URI_PREFIX = "http://schemas.microsoft.com/powershell/"
SHELL_URI = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
CONFIG_URI = "http://schemas.microsoft.com/wbem/wsman/1/config"
MAX_ENVELOPE_KB = 500
MAX_SHELLS = 256
# winrm/config/winrs/MaxShellsPerUser: 30 by default since WinRM 2.0.
MAX_SHELLS_PER_USER = 30
SHELL_IDLE_TIMEOUT = 7200.0  # the shell IdleTimeOut a Windows host reports (PT7200.000S)


@dataclass(frozen=True)
class Caller:
    """Who sent a request and where it arrived."""

    principal: str
    address: str
    endpoint: str  # e.g. https://127.0.0.1:5986/wsman


def _uuid(text: str | None) -> uuid.UUID:
    try:
        return uuid.UUID(str(text or "").strip())
    except ValueError:
        raise invalid_selectors() from None


_CMD = re.compile(rb'<S N="Cmd">([^<]{1,200})</S>')
_TARGET = re.compile(rb'<S N="N">-?(?:VMName|Name)</S>\s*<S N="V">([^<]{1,200})</S>')


def _pipeline_key(arguments: str) -> str:
    """"Get-VM:web01" from a Command's first PSRP fragment (its CreatePipeline message), best effort."""
    try:
        data = base64.b64decode(arguments.strip(), validate=False)
    except (binascii.Error, ValueError):
        return ""
    cmd = _CMD.search(data)
    target = _TARGET.search(data)
    parts = [m.group(1).decode("utf-8", "replace") for m in (cmd, target) if m is not None]
    return ":".join(parts)


_ISO_SECONDS = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?$")
# PowerShell's session IdleTimeout is 60 s at least (New-PSTransportOption -IdleTimeoutSec: ValidateRange(60,
# 2147483)); the shell's MaxIdleTimeOut is PT2147483.647S. A client's value is kept within those (clamping, not a
# fault, is unconfirmed).
MIN_IDLE_TIMEOUT = 60.0
MAX_IDLE_TIMEOUT = 2147483.647


def _idle_timeout(text: str) -> float:
    """The IdleTimeOut a client asked for in Create (``PT120S``), within WinRM's limits; the default if none."""
    m = _ISO_SECONDS.match(text.strip())
    if not text.strip() or m is None or not any(m.groups()):
        return SHELL_IDLE_TIMEOUT
    hours, minutes, seconds = (float(g) if g else 0.0 for g in m.groups())
    return min(max(hours * 3600 + minutes * 60 + seconds, MIN_IDLE_TIMEOUT), MAX_IDLE_TIMEOUT)


def _duration(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"P{days}DT{hours}H{minutes}M{secs}S"


class WSManService:
    """Shell table and WinRS operations; thread-safe."""

    def __init__(self, host: PipelineHost, counters: Counters, faults: FaultPlan, machine: str,
                 workers: int = 32) -> None:
        self.host = host
        self.counters = counters
        self.faults = faults
        self.machine = machine
        self._shells: dict[str, Shell] = {}
        self._attached: dict[str, Shell] = {}  # runspace pools of other transports (PowerShell's OOP server)
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sim-pipeline")
        self._pid = 4000 + (os.getpid() % 4000)
        self.idle_timeout = SHELL_IDLE_TIMEOUT
        self._command_keys: dict[str, str] = {}  # CommandId -> what the pipeline is (for fault streams)

    # ------------------------------------------------------------------ fault streams
    def event_key(self, req: WSManRequest) -> str:
        """What a request is, for the fault plan's per-stream draws: a pipeline's first cmdlet and its VM
        (for the Command and every Send/Receive/Signal of it), else the action."""
        body = req.body
        if req.action == "Command" and body is not None:
            line = body.find("rsp:CommandLine", NS)
            key = _pipeline_key((line.findtext("rsp:Arguments", "", NS) or "") if line is not None else "")
            cid = str(line.get("CommandId") or "").upper() if line is not None else ""
            if cid:
                with self._lock:
                    self._command_keys[cid] = key
                    while len(self._command_keys) > 4096:
                        self._command_keys.pop(next(iter(self._command_keys)))
            return f"Command:{key}"
        if body is not None:
            for el in body.iter():
                command_id = el.get("CommandId")
                if command_id:
                    with self._lock:
                        known = self._command_keys.get(command_id.strip().upper(), "")
                    return f"{req.action}:{known}"
        return req.action

    # ------------------------------------------------------------------ dispatch
    def handle(self, req: WSManRequest, caller: Caller) -> tuple[str, str]:
        """(response action URI, body XML) for a request; WSManFault on failure."""
        if not req.action:
            raise action_not_supported(req.action_uri)
        rule = self.faults.check("wsman_fault", key=self.event_key(req), action=req.action)
        if rule is not None:
            raw_code = rule.params.get("code", 0x80338012)
            try:
                code = int(str(raw_code), 0) if isinstance(raw_code, str) else int(raw_code)
            except ValueError:
                code = 0x80338012
            reason = str(rule.params.get("message") or rule.params.get("reason") or
                         "The WS-Management service cannot process the request. (simulated fault)")
            raise WSManFault(code, reason, str(rule.params.get("subcode", "w:InternalError")))
        op = getattr(self, f"_op_{req.action.lower()}", None)
        if op is None:
            raise action_not_supported(req.action_uri)
        body: str = op(req, caller)
        return RESPONSE_ACTIONS[req.action], body

    def close(self) -> None:
        with self._lock:
            shells = list(self._shells.values()) + list(self._attached.values())
            self._shells.clear()
            self._attached.clear()
        for shell in shells:
            shell.close()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def shell_count(self) -> int:
        """Open runspace pools: WinRS shells and out-of-process sessions."""
        with self._lock:
            return len(self._shells) + len(self._attached)

    def running_pipelines(self) -> int:
        """Pipelines still running (a client that died leaves its last one running until it ends)."""
        with self._lock:
            shells = list(self._shells.values()) + list(self._attached.values())
        return sum(1 for shell in shells for run in list(shell.runs.values()) if run.submitted and not run.finished)

    def shell_activity(self) -> list[dict[str, Any]]:
        """Each open shell: its id, owner and seconds since it was last used."""
        now = time.monotonic()
        with self._lock:
            return [{"id": s.id, "owner": s.owner, "idle_seconds": round(now - s.last_activity, 3)}
                    for s in [*self._shells.values(), *self._attached.values()]]

    def _expired(self, shell: Shell, now: float) -> bool:
        return shell.idle_for(now) > min(shell.idle_timeout, self.idle_timeout)

    def _reap_idle(self) -> None:
        """Close shells nobody used for their IdleTimeOut (clients that vanished without Delete)."""
        now = time.monotonic()
        with self._lock:
            idle = [s for s in self._shells.values() if self._expired(s, now)]
            for shell in idle:
                self._shells.pop(shell.id, None)
        for shell in idle:
            log.info("shell %s idle for more than %.0f s: closed", shell.id, shell.idle_timeout)
            shell.close()

    def _shell(self, req: WSManRequest, caller: Caller) -> Shell:
        shell_id = req.selectors.get("ShellId", "").strip().upper()
        with self._lock:
            shell = self._shells.get(shell_id)
        if shell is not None and self._expired(shell, time.monotonic()):
            self._reap_idle()  # WinRM closed it when its IdleTimeOut ran out: the client learns now
            shell = None
        if shell is None or shell.owner.lower() != caller.principal.lower():
            raise shell_not_found(shell_id)
        return shell

    @staticmethod
    def _body(req: WSManRequest, path: str) -> Any:
        el = req.body.find(path, NS) if req.body is not None else None
        if el is None:
            raise invalid_soap_body()
        return el

    # ------------------------------------------------------------------ transfer
    def _op_create(self, req: WSManRequest, caller: Caller) -> str:
        if not req.resource_uri.startswith(POWERSHELL_URI_PREFIX):
            raise invalid_resource_uri()
        shell_el = self._body(req, "rsp:Shell")
        creation = shell_el.find("pwsh:creationXml", NS)
        if creation is None or not (creation.text or "").strip():
            raise invalid_soap_body()
        shell_id = str(_uuid(shell_el.get("ShellId") or str(uuid.uuid4()))).upper()
        try:
            creation_data = base64.b64decode(creation.text or "", validate=True)
        except (binascii.Error, ValueError):
            raise invalid_parameter() from None
        session = Session(username=caller.principal, client_address=caller.address)
        shell = Shell(shell_id, req.resource_uri, session, self.host, self._executor, req.max_envelope_size,
                      on_pipeline=lambda: self.counters.add("pipelines"))
        shell.idle_timeout = _idle_timeout(shell_el.findtext("rsp:IdleTimeOut", "", NS) or "")
        self._reap_idle()
        with self._lock:
            if shell_id in self._shells:
                raise WSManFault(0x80338033, "The WS-Management service cannot create the resource because it "
                                 "already exists.", "w:AlreadyExists", sender=True)
            self._admit(caller.principal)
            self._shells[shell_id] = shell
        try:
            with shell.cond:
                shell.feed(creation_data, None)
        except WSManFault:
            with self._lock:
                self._shells.pop(shell_id, None)
            raise
        return (
            f"<x:ResourceCreated><a:Address>{x(caller.endpoint)}</a:Address><a:ReferenceParameters>"
            f"<w:ResourceURI>{x(req.resource_uri)}</w:ResourceURI><w:SelectorSet>"
            f'<w:Selector Name="ShellId">{shell_id}</w:Selector></w:SelectorSet></a:ReferenceParameters>'
            f"</x:ResourceCreated>{self._shell_xml(shell)}"
        )

    def _admit(self, principal: str) -> None:
        """MaxShellsPerUser and the service's shell limit, counting out-of-process sessions too (lock held)."""
        mine = sum(1 for s in [*self._shells.values(), *self._attached.values()]
                   if s.session.username.lower() == principal.lower())
        if mine >= MAX_SHELLS_PER_USER:
            # ERROR_WSMAN_QUOTA_MAX_SHELLS; the code is unconfirmed, the text is wsmerror.h's.
            raise WSManFault(0x803381A5, "The WS-Management service cannot process the request. This user is "
                             f"allowed a maximum number of {MAX_SHELLS_PER_USER} concurrent shells, which has "
                             "been exceeded. Close existing shells or raise the quota for this user.",
                             "w:QuotaLimit")
        if len(self._shells) + len(self._attached) >= MAX_SHELLS:
            raise WSManFault(0x8033803F, "The WS-Management service is busy servicing other requests. "
                             "Retry later.", "w:QuotaLimit")

    # ------------------------------------------------------------------ other transports
    def attach_shell(self, session: Session, on_output: Callable[[uuid.UUID | None, bytes], None]) -> Shell:
        """A runspace pool for PowerShell's out-of-process transport: the same executor, pipeline counter and
        MaxShellsPerUser as a WinRS shell (WSManFault w:QuotaLimit past them); no idle timeout, no Receive."""
        shell_id = str(uuid.uuid4()).upper()
        shell = Shell(shell_id, POWERSHELL_URI_PREFIX + "Microsoft.PowerShell", session, self.host, self._executor,
                      MAX_ENVELOPE_KB * 1024, on_pipeline=lambda: self.counters.add("pipelines"),
                      on_output=on_output)
        with self._lock:
            self._admit(session.username)
            self._attached[shell_id] = shell
        return shell

    def detach_shell(self, shell: Shell) -> None:
        """Close an attached runspace pool and its pipelines."""
        with self._lock:
            self._attached.pop(shell.id, None)
        shell.close()

    def _shell_xml(self, shell: Shell) -> str:
        now = time.monotonic()
        return (
            f"<rsp:Shell><rsp:ShellId>{shell.id}</rsp:ShellId><rsp:Name>Runspace</rsp:Name>"
            f"<rsp:ResourceUri>{x(shell.resource_uri)}</rsp:ResourceUri><rsp:Owner>{x(shell.owner)}</rsp:Owner>"
            f"<rsp:ClientIP>{x(shell.session.client_address)}</rsp:ClientIP>"
            f"<rsp:ProcessId>{self._pid}</rsp:ProcessId><rsp:IdleTimeOut>PT{shell.idle_timeout:.3f}S</rsp:IdleTimeOut>"
            "<rsp:InputStreams>stdin pr</rsp:InputStreams><rsp:OutputStreams>stdout</rsp:OutputStreams>"
            "<rsp:MaxIdleTimeOut>PT2147483.647S</rsp:MaxIdleTimeOut><rsp:Locale>en-US</rsp:Locale>"
            "<rsp:DataLocale>en-US</rsp:DataLocale><rsp:ProfileLoaded>Yes</rsp:ProfileLoaded>"
            "<rsp:Encoding>UTF8</rsp:Encoding><rsp:BufferMode>Block</rsp:BufferMode>"
            "<rsp:State>Connected</rsp:State>"
            f"<rsp:ShellRunTime>{_duration(time.time() - shell.created)}</rsp:ShellRunTime>"
            f"<rsp:ShellInactivity>{_duration(now - shell.last_activity)}</rsp:ShellInactivity></rsp:Shell>"
        )

    def _op_get(self, req: WSManRequest, caller: Caller) -> str:
        if req.resource_uri.rstrip("/") == CONFIG_URI:
            return self._config_xml()
        return self._shell_xml(self._shell(req, caller))

    @staticmethod
    def _config_xml() -> str:
        return (
            f'<cfg:Config xmlns:cfg="{NS["cfg"]}"><cfg:MaxEnvelopeSizekb>{MAX_ENVELOPE_KB}</cfg:MaxEnvelopeSizekb>'
            "<cfg:MaxTimeoutms>60000</cfg:MaxTimeoutms><cfg:MaxBatchItems>32000</cfg:MaxBatchItems>"
            "<cfg:MaxProviderRequests>4294967295</cfg:MaxProviderRequests>"
            "<cfg:Service><cfg:AllowUnencrypted>false</cfg:AllowUnencrypted><cfg:Auth>"
            "<cfg:Basic>true</cfg:Basic><cfg:Kerberos>false</cfg:Kerberos><cfg:Negotiate>true</cfg:Negotiate>"
            "<cfg:Certificate>false</cfg:Certificate><cfg:CredSSP>false</cfg:CredSSP>"
            "<cfg:CbtHardeningLevel>Relaxed</cfg:CbtHardeningLevel></cfg:Auth></cfg:Service></cfg:Config>"
        )

    def _op_delete(self, req: WSManRequest, caller: Caller) -> str:
        shell = self._shell(req, caller)
        with self._lock:
            self._shells.pop(shell.id, None)
        shell.close()
        return ""

    def _op_enumerate(self, req: WSManRequest, caller: Caller) -> str:
        uri = req.resource_uri.rstrip("/")
        with self._lock:
            mine = [s for s in self._shells.values() if s.owner.lower() == caller.principal.lower()]
        if uri == SHELL_URI:
            items = "".join(self._shell_xml(s) for s in mine)
        elif uri == SHELL_URI + "/Command":
            wanted = None
            if req.body is not None:
                for sel in req.body.iter(f"{{{NS['wsman']}}}Selector"):
                    if sel.get("Name") == "ShellId":
                        wanted = (sel.text or "").strip().upper()
            shells = [s for s in mine if wanted is None or s.id == wanted]
            items = "".join(
                f"<rsp:Command><rsp:ShellId>{s.id}</rsp:ShellId><rsp:CommandId>{str(cid).upper()}"
                "</rsp:CommandId></rsp:Command>"
                for s in shells for cid in s.command_ids()
            )
        else:
            raise invalid_resource_uri()
        return (
            f"<n:EnumerateResponse><n:EnumerationContext/><w:Items>{items}</w:Items>"
            "<w:EndOfSequence/></n:EnumerateResponse>"
        )

    # ------------------------------------------------------------------ shell
    def _op_command(self, req: WSManRequest, caller: Caller) -> str:
        shell = self._shell(req, caller)
        line = self._body(req, "rsp:CommandLine")
        command_id = _uuid(line.get("CommandId") or str(uuid.uuid4()))
        arguments = (line.findtext("rsp:Arguments", None, NS) or "").strip()
        if not arguments:  # a PowerShell pipeline starts with its CreatePipeline fragment
            raise invalid_parameter()
        shell.command(command_id, arguments)
        return f"<rsp:CommandResponse><rsp:CommandId>{str(command_id).upper()}</rsp:CommandId></rsp:CommandResponse>"

    def _op_send(self, req: WSManRequest, caller: Caller) -> str:
        shell = self._shell(req, caller)
        send = self._body(req, "rsp:Send")
        streams = []
        for stream in send.findall("rsp:Stream", NS):
            cid = stream.get("CommandId")
            streams.append((_uuid(cid) if cid else None, stream.text or ""))
        shell.send(streams)
        return "<rsp:SendResponse/>"

    def _op_signal(self, req: WSManRequest, caller: Caller) -> str:
        shell = self._shell(req, caller)
        sig = self._body(req, "rsp:Signal")
        cid = sig.get("CommandId")
        shell.signal(_uuid(cid) if cid else None, (sig.findtext("rsp:Code", "", NS) or "").strip())
        return "<rsp:SignalResponse/>"

    def _op_receive(self, req: WSManRequest, caller: Caller) -> str:
        shell = self._shell(req, caller)
        desired = self._body(req, "rsp:Receive/rsp:DesiredStream")
        cid = desired.get("CommandId")
        pipeline_id = _uuid(cid) if cid else None
        rule = self.faults.check("slow_receive", key=self.event_key(req), action="Receive")
        if rule is not None:
            delay = min(float(rule.params.get("seconds", 1.0)), req.operation_timeout)
            time.sleep(max(delay, 0.0))
        chunks, done = shell.receive(pipeline_id, req.operation_timeout, req.max_envelope_size)
        cattr = f' CommandId="{str(pipeline_id).upper()}"' if pipeline_id else ""
        streams = "".join(
            f'<rsp:Stream Name="stdout"{cattr}>{base64.b64encode(c).decode()}</rsp:Stream>' for c in chunks
        )
        state = ""
        if done is not None:
            name = "Done" if done else "Running"
            code = "<rsp:ExitCode>0</rsp:ExitCode>" if done else ""
            state = (f'<rsp:CommandState{cattr} State="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/'
                     f'CommandState/{name}">{code}</rsp:CommandState>')
        return f"<rsp:ReceiveResponse>{streams}{state}</rsp:ReceiveResponse>"
