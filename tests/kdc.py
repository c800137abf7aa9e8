"""A real MIT Kerberos KDC on loopback for the tests: its own realm, configuration, database and keytab.

``Kdc.start(directory)`` writes krb5.conf and kdc.conf into ``directory``, creates the database with
``kdb5_util``, adds the service principals ``host/localhost`` and ``HTTP/localhost`` (exported to a
keytab) and runs ``krb5kdc -n`` on a free loopback port until ``stop()``. ``env()`` is what a process that
talks Kerberos needs (KRB5_CONFIG, KRB5_KDC_PROFILE, KRB5CCNAME): gssapi reads KRB5_CONFIG once, when the
library first initialises, so the simulator and labctl run as subprocesses with that environment.

The SPN host is ``localhost`` (an IP address is no Kerberos service name) with dns_canonicalize_hostname and
rdns off, so clients ask for ``host/localhost@LABCTL.TEST`` exactly; the simulator's certificate names localhost.
Missing Debian packages make the fixture fail with the install line, never skip.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REALM = "LABCTL.TEST"
SPN_HOST = "localhost"
APT_LINE = "apt-get install -y krb5-kdc krb5-admin-server krb5-user libkrb5-dev faketime"
TOOLS = {"krb5kdc": "/usr/sbin/krb5kdc", "kdb5_util": "/usr/sbin/kdb5_util",
         "kadmin.local": "/usr/sbin/kadmin.local", "kinit": "/usr/bin/kinit", "klist": "/usr/bin/klist"}


def tool(name: str) -> str:
    """The path of a Kerberos program; AssertionError with the install line when it is missing."""
    found = shutil.which(name) or (TOOLS.get(name) if Path(TOOLS.get(name, "/nonexistent")).exists() else None)
    if not found:
        raise AssertionError(f"{name} is missing: the Kerberos tests need MIT Kerberos ({APT_LINE})")
    return found


def faketime_lib() -> str:
    """libfaketime's preload library (the clock-skew tests), or AssertionError with the install line."""
    for cand in ("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1", "/usr/lib/aarch64-linux-gnu/faketime/"
                 "libfaketime.so.1", "/usr/lib/faketime/libfaketime.so.1"):
        if Path(cand).exists():
            return cand
    raise AssertionError(f"libfaketime is missing: the clock-skew tests need it ({APT_LINE})")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Kdc:
    """A running krb5kdc for REALM and the files of its realm."""

    dir: Path
    port: int
    keytab: Path
    realm: str = REALM
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def krb5_conf(self) -> Path:
        return self.dir / "krb5.conf"

    @property
    def spns(self) -> tuple[str, ...]:
        """The service's principals, as a Windows computer account has them: HOST/ (pypsrp asks for host/ by
        default; HTTP is one of HOST's aliases on Windows) and HTTP/ (CredSSP's inner Kerberos asks for it)."""
        return (f"host/{SPN_HOST}@{self.realm}", f"HTTP/{SPN_HOST}@{self.realm}")

    def env(self, ccache: Path | None = None, **extra: str) -> dict[str, str]:
        """os.environ plus this realm's configuration (and a ticket cache of its own, when given)."""
        env = dict(os.environ)
        env.update(KRB5_CONFIG=str(self.krb5_conf), KRB5_KDC_PROFILE=str(self.dir / "kdc.conf"),
                   KRB5CCNAME=f"FILE:{ccache or self.dir / 'ccache'}", KRB5_TRACE="/dev/null")
        env.pop("KRB5_KTNAME", None)
        env.update(extra)
        return env

    def kadmin(self, query: str, *, may_exist: bool = False) -> bool:
        """One kadmin.local command (-q); False when it failed only because the principal exists."""
        proc = subprocess.run([tool("kadmin.local"), "-r", self.realm, "-q", query], env=self.env(),
                              capture_output=True, text=True, timeout=30, check=False)
        err = proc.stderr.strip()
        if may_exist and "already exists" in err:
            return False
        # kadmin.local exits 0 on most failures; its messages read "<command>: <error> while <doing>".
        if proc.returncode != 0 or " while " in err:
            raise AssertionError(f"kadmin.local {query.split()[0]} failed: {err}")
        return True

    def add_user(self, name: str, password: str) -> str:
        """A user principal NAME@REALM with this password (set anew when it exists); returns the principal."""
        principal = f"{name}@{self.realm}"
        # -pw keeps the password inside the test's own process tree (test passwords are URL-safe).
        if not self.kadmin(f'addprinc -clearpolicy -pw "{password}" {principal}', may_exist=True):
            self.kadmin(f'cpw -pw "{password}" {principal}')
        return principal

    def kinit(self, principal: str, password: str, ccache: Path, *, lifetime: str | None = None,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """kinit PRINCIPAL into CCACHE, the password on stdin (as a user types it)."""
        args = [tool("kinit"), "-c", f"FILE:{ccache}"]
        if lifetime:
            args += ["-l", lifetime]
        return subprocess.run([*args, principal], input=password + "\n", env=env or self.env(ccache),
                              capture_output=True, text=True, timeout=30, check=False)

    @classmethod
    def start(cls, directory: Path, realm: str = REALM) -> Kdc:
        for name in ("krb5kdc", "kdb5_util", "kadmin.local", "kinit"):
            tool(name)
        directory.mkdir(parents=True, exist_ok=True)
        port = _free_port()
        kdc = cls(directory, port, directory / "http.keytab", realm)
        (directory / "krb5.conf").write_text(
            "[libdefaults]\n"
            f"  default_realm = {realm}\n"
            "  dns_lookup_kdc = false\n  dns_lookup_realm = false\n"
            "  dns_canonicalize_hostname = false\n  rdns = false\n"
            "  udp_preference_limit = 1\n  clockskew = 300\n"
            "  forwardable = true\n  ignore_acceptor_hostname = false\n"
            "[realms]\n"
            f"  {realm} = {{\n    kdc = 127.0.0.1:{port}\n  }}\n"
            "[domain_realm]\n"
            f"  {SPN_HOST} = {realm}\n")
        (directory / "kdc.conf").write_text(
            "[kdcdefaults]\n"
            f"  kdc_listen = 127.0.0.1:{port}\n  kdc_tcp_listen = 127.0.0.1:{port}\n"
            "[realms]\n"
            f"  {realm} = {{\n"
            f"    database_name = {directory / 'principal'}\n"
            f"    key_stash_file = {directory / 'stash'}\n"
            f"    acl_file = {directory / 'kadm5.acl'}\n"
            "    max_life = 10h 0m 0s\n    max_renewable_life = 1d\n"
            "    supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal\n"
            "  }\n"
            "[logging]\n"
            f"  kdc = FILE:{directory / 'kdc.log'}\n")
        (directory / "kadm5.acl").write_text("")
        env = kdc.env()
        master = os.urandom(12).hex()
        subprocess.run([tool("kdb5_util"), "-r", realm, "create", "-s", "-P", master], env=env,
                       capture_output=True, text=True, timeout=60, check=True)
        for spn in kdc.spns:
            kdc.kadmin(f"addprinc -randkey {spn}")
            kdc.kadmin(f"ktadd -k {kdc.keytab} {spn}")
        kdc._proc = subprocess.Popen([tool("krb5kdc"), "-n", "-r", realm], env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if kdc._proc.poll() is not None:
                err = kdc._proc.stderr.read().decode(errors="replace") if kdc._proc.stderr else ""
                raise AssertionError(f"krb5kdc exited ({kdc._proc.returncode}): {err.strip()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return kdc
            except OSError:
                time.sleep(0.05)
        kdc.stop()
        raise AssertionError("krb5kdc did not listen within 15 s")

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)
        self._proc = None


@pytest.fixture(scope="module", name="kdc")
def kdc_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kdc]:
    """A KDC for the module's tests (fails, never skips, when MIT Kerberos is not installed)."""
    k = Kdc.start(tmp_path_factory.mktemp("kdc"))
    yield k
    k.stop()


REPO = Path(__file__).resolve().parents[1]


class SimProcess:
    """``labctl sim serve`` in a subprocess with the realm's environment (gssapi reads it at first use)."""

    def __init__(self, state: Path, kdc: Kdc, *, faketime: str | None = None, kerberos: bool = True,
                 credssp: bool = True) -> None:
        import json
        import sys

        self.state = state
        args = [sys.executable, "-m", "labctl.cli.main", "sim", "serve", "--state", str(state)]
        if kerberos:
            args += ["--kerberos-keytab", str(kdc.keytab), "--kerberos-realm", kdc.realm]
        args.append("--credssp" if credssp else "--no-credssp")
        env = kdc.env(PYTHONPATH=str(REPO))
        if faketime:  # a host whose clock is off: libfaketime moves every clock call of the process
            env.update(LD_PRELOAD=faketime_lib(), FAKETIME=faketime, FAKETIME_DONT_RESET="1")
        (state / "endpoint.json").unlink(missing_ok=True)
        self._proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while not (state / "endpoint.json").is_file():
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise AssertionError(f"labctl sim serve exited ({self._proc.returncode}): {err.strip()}")
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError("labctl sim serve did not start within 60 s")
            time.sleep(0.1)
        self.endpoint = json.loads((state / "endpoint.json").read_text())

    def uri(self, scheme: str = "https", host: str = SPN_HOST) -> str:
        return str(self.endpoint[f"{scheme}_uri"]).replace("127.0.0.1", host)

    def stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(10)


def remote_lab(sim: SimProcess, *, auth: str, username: str | None, uri: str,
               password_env: str | None = "LABCTL_TEST_HOST_PASSWORD", name: str | None = None) -> str:
    """The shipped quickstart aimed at a served simulator with this auth (certificate pinned)."""
    import re

    from labctl.resources import resource_dir

    text = (resource_dir("labs") / "quickstart.yaml").read_text()
    if name is not None:
        text = re.sub(r"^name: .*$", f"name: {name}", text, count=1, flags=re.MULTILINE)
    host = f"host:\n  uri: {uri}\n  auth: {auth}\n"
    if username:
        host += f"  username: '{username}'\n"
    if password_env:
        host += f"  password_env: {password_env}\n"
    host += f"  fingerprint: 'sha256:{sim.endpoint['fingerprint']}'\n"
    return text.replace("host: sim", host) + "guest_password_env: LABCTL_GUEST_PASSWORD\n"


def run_labctl(args: list[str], env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """The labctl CLI as a user runs it, in its own process (its gssapi reads this environment)."""
    import sys

    return subprocess.run([sys.executable, "-m", "labctl.cli.main", *args], env={**env, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, timeout=timeout, check=False)
