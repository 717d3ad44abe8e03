"""Shared fixtures for tests against the lab (marker `lab`).

The lab is `lab/lab up`: mail1, mail2 and client are real Debian hosts on a bridge. Tests run
on the controller and talk only to the lab hosts' addresses; commands on a host go through
`lab/lab ssh HOST CMD` (the lab's own key). Secrets are the git-ignored files under `.lab/`.

When the lab is not up the tests are skipped, unless MAILGOV_LAB_REQUIRED=1 (CI after
`lab up`), where a missing lab is an error: a skipped proof must never pass for a real one.
With MAILGOV_LAB_REQUIRED=1 any other skip fails too, unless tests/allowed_gaps.yml allows it
with a reason (lab/proofgate.py). Every test here is marked `lab` by this file, so a module
that forgets its `pytestmark` is still selected by `-m lab`.
"""

from __future__ import annotations

import imaplib
import json
import os
import poplib
import re
import shlex
import smtplib
import socket
import ssl
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from lab import labenv, proofgate, test_passwords
from mailgov.archive import due_stores, load_manifest
from mailgov.directory import Entry, desired_entries
from mailgov.loader import load
from mailgov.model import build

REPO = Path(__file__).resolve().parents[2]
LAB_TESTS = Path(__file__).resolve().parent


def _lab_id() -> int:
    """MAILGOV_LAB_ID: which of the machine's labs to test (lab.labenv, as lab/lab)."""
    try:
        return labenv.lab_id()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


LAB_ID = _lab_id()
LAB_DIR = labenv.lab_dir(REPO, LAB_ID)
# The tests' own lifecycle state (handover files, recipients, archive manifest): outside the
# checkout, where the credentials module accepts it (mailgov.credentials.state_path_problems).
STATE_DIR = labenv.controller_state_dir(LAB_ID) / "tests"
DATA_FILE = Path(os.environ.get("MAILGOV_DATA", REPO / "data" / "mailboxes.yaml"))
LAB_CLI = REPO / "lab" / "lab"
TIMEOUT = 20  # seconds for one network operation


def pytest_configure(config: pytest.Config) -> None:
    proofgate.register(config)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        # Every test of this suite needs the lab: `pytest -m lab` selects it, pytestmark or not.
        if LAB_TESTS in item.path.resolve().parents:
            item.add_marker(pytest.mark.lab)


@dataclass(frozen=True)
class LabHost:
    name: str
    addr: str
    fqdn: str


def _lab_missing(reason: str) -> None:
    if os.environ.get("MAILGOV_LAB_REQUIRED") == "1":
        pytest.fail(f"lab required but not usable: {reason}")
    pytest.skip(f"lab not up: {reason}")


def _inventory() -> dict[str, Any]:
    ansible_inventory = REPO / ".venv" / "bin" / "ansible-inventory"
    out = subprocess.run(
        [str(ansible_inventory), "--list"], cwd=REPO, capture_output=True, text=True,
        check=False, timeout=60,
    )
    if out.returncode != 0:
        _lab_missing(f"ansible-inventory failed: {out.stderr.strip()[:300]}")
    return json.loads(out.stdout)


@pytest.fixture(scope="session")
def lab_hosts() -> dict[str, LabHost]:
    """mail1, mail2, client with their address and FQDN, from the default (lab) inventory."""
    hostvars = _inventory().get("_meta", {}).get("hostvars", {})
    hosts: dict[str, LabHost] = {}
    for name, hv in hostvars.items():
        short = name.split(".")[0]
        # ansible-inventory does not template: the inventory's addresses carry "{{ lab_id }}".
        addr = str(hv.get("ansible_host", name)).replace("{{ lab_id }}", str(LAB_ID))
        if "{{" in addr:
            _lab_missing(f"cannot resolve the address of {name}: {addr}")
        fqdn = hv.get("mailgov_fqdn") or (name if "." in name else f"{short}.monre.gov.vn")
        hosts[short] = LabHost(short, addr, fqdn)
    for need in ("mail1", "mail2"):
        if need not in hosts:
            _lab_missing(f"inventory has no {need}")
    for h in hosts.values():
        if h.name.startswith("mail"):
            try:
                socket.create_connection((h.addr, 993), timeout=5).close()
            except OSError as exc:
                _lab_missing(f"{h.name} ({h.addr}:993) unreachable: {exc}")
    return hosts


@pytest.fixture(scope="session")
def lab_ca() -> Path:
    ca = LAB_DIR / "pki" / "ca.crt"
    if not ca.is_file():
        _lab_missing(f"no lab CA at {ca}")
    return ca


@pytest.fixture(scope="session")
def tls(lab_ca: Path) -> ssl.SSLContext:
    """Verifies the servers' certificates against the lab CA, by host name."""
    ctx = ssl.create_default_context(cafile=str(lab_ca))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


@pytest.fixture(scope="session")
def passwords() -> dict[str, str]:
    """{address: password} of the mailboxes the lab gave a known password (lab/test_passwords.py:
    set now where a bind with them fails)."""
    return {k.lower(): v for k, v in _test_passwords().active.items()}


@pytest.fixture(scope="session")
def suspended_login() -> tuple[str, str] | None:
    """(address, password) of a suspended mailbox whose right password is known."""
    return _test_passwords().suspended


_ENSURED: list[test_passwords.TestPasswords] = []


def _test_passwords() -> test_passwords.TestPasswords:
    if not _ENSURED:
        try:
            _ENSURED.append(test_passwords.ensure(DATA_FILE, LAB_DIR))
        except (RuntimeError, OSError) as exc:
            _lab_missing(f"test mailboxes' passwords: {exc}")
    return _ENSURED[0]


@pytest.fixture(scope="session")
def data() -> dict[str, Any]:
    if not DATA_FILE.is_file():
        _lab_missing(f"no data file {DATA_FILE}")
    return yaml.safe_load(DATA_FILE.read_text(encoding="utf-8"))


def purged_addresses(data_file: Path = DATA_FILE) -> set[str]:
    """Cancelled mailboxes a fresh lab never gets (past their retention by the data) and those
    archived by a lifecycle run (the planner never recreates an archived address), so a test
    that needs a live cancelled entry picks another."""
    archived = set(load_manifest(STATE_DIR / "archives" / "manifest.json")["archives"])
    return archived | {s.address for s in due_stores(build(load(data_file).data), date.today())}


@pytest.fixture(scope="session")
def entries(data: dict[str, Any]) -> list[Entry]:
    """The directory the lab should hold (the loader wrote exactly these)."""
    return desired_entries(build(data))  # the lab's data file is validated by the pipeline


# --- clients that connect to an address but verify the certificate by FQDN -----------------


class LabSMTP(smtplib.SMTP):
    """smtplib.SMTP to `addr`, with TLS names checked against `fqdn` (no DNS in the lab)."""

    def __init__(self, fqdn: str, addr: str, port: int, **kw: Any) -> None:
        self._addr = addr
        super().__init__(fqdn, port, local_hostname="tester.lab", timeout=TIMEOUT, **kw)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return socket.create_connection((self._addr, port), timeout, self.source_address)


class LabSMTPS(smtplib.SMTP_SSL):
    """Implicit-TLS submission (465) to `addr`, certificate checked against `fqdn`."""

    def __init__(self, fqdn: str, addr: str, port: int, context: ssl.SSLContext) -> None:
        self._addr = addr
        super().__init__(fqdn, port, local_hostname="tester.lab", timeout=TIMEOUT,
                         context=context)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        raw = socket.create_connection((self._addr, port), timeout, self.source_address)
        return self.context.wrap_socket(raw, server_hostname=self._host)


class LabIMAPS(imaplib.IMAP4_SSL):
    """IMAPS (993) to `addr`, certificate checked against `fqdn`."""

    def __init__(self, fqdn: str, addr: str, context: ssl.SSLContext) -> None:
        self._addr = addr
        super().__init__(fqdn, 993, ssl_context=context, timeout=TIMEOUT)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        raw = socket.create_connection((self._addr, self.port), timeout)
        return self.ssl_context.wrap_socket(raw, server_hostname=self.host)


@pytest.fixture(scope="session")
def smtp(lab_hosts: dict[str, LabHost]) -> Callable[[str, int], LabSMTP]:
    def connect(host: str, port: int = 25) -> LabSMTP:
        h = lab_hosts[host]
        return LabSMTP(h.fqdn, h.addr, port)
    return connect


@pytest.fixture(scope="session")
def smtps(lab_hosts: dict[str, LabHost], tls: ssl.SSLContext) -> Callable[[str], LabSMTPS]:
    def connect(host: str) -> LabSMTPS:
        h = lab_hosts[host]
        return LabSMTPS(h.fqdn, h.addr, 465, tls)
    return connect


@pytest.fixture(scope="session")
def imaps(lab_hosts: dict[str, LabHost], tls: ssl.SSLContext) -> Callable[[str], LabIMAPS]:
    def connect(host: str) -> LabIMAPS:
        h = lab_hosts[host]
        return LabIMAPS(h.fqdn, h.addr, tls)
    return connect


# --- commands on the lab hosts -----------------------------------------------------------


@dataclass(frozen=True)
class Result:
    rc: int
    stdout: str
    stderr: str


def _ssh(host: str, command: str, timeout: int = 120) -> Result:
    out = subprocess.run(
        [str(LAB_CLI), "ssh", host, command], cwd=REPO, capture_output=True, text=True,
        check=False, timeout=timeout, stdin=subprocess.DEVNULL,
    )
    return Result(out.returncode, out.stdout, out.stderr)


@pytest.fixture(scope="session")
def host_run(lab_hosts: dict[str, LabHost]) -> Callable[..., Result]:
    """Run a shell command as root on a lab host (over the lab's ssh)."""
    def run(host: str, command: str, timeout: int = 120) -> Result:
        assert host in lab_hosts, f"unknown lab host {host}"
        return _ssh(host, command, timeout)
    return run


@pytest.fixture(scope="session")
def client_python(host_run: Callable[..., Result]) -> Callable[[str], Result]:
    """Run a Python 3 program on the `client` host (traffic from a third machine)."""
    def run(program: str) -> Result:
        return host_run("client", f"python3 -c {shlex.quote(program)}")
    return run


# Debian runs the MTA as the instance unit postfix@- (postfix.service is only a wrapper).
POSTFIX_UNIT = "postfix@-"


class PostfixSwitch:
    """Stops and starts Postfix on lab hosts; whatever it stopped is started at teardown."""

    def __init__(self, run: Callable[..., Result]) -> None:
        self._run = run
        self.stopped: set[str] = set()

    def stop(self, host: str) -> None:
        self.stopped.add(host)
        res = self._run(host, f"systemctl stop {POSTFIX_UNIT} && "
                              f"! systemctl is-active --quiet {POSTFIX_UNIT}")
        assert res.rc == 0, f"could not stop postfix on {host}: {res.stderr}"

    def start(self, host: str) -> None:
        res = self._run(host, f"systemctl start {POSTFIX_UNIT}")
        assert res.rc == 0, f"could not start postfix on {host}: {res.stderr}"
        self.stopped.discard(host)


@pytest.fixture
def postfix_switch(host_run: Callable[..., Result]) -> Iterator[PostfixSwitch]:
    switch = PostfixSwitch(host_run)
    yield switch
    for host in sorted(switch.stopped):
        host_run(host, f"systemctl start {POSTFIX_UNIT}")


class LabPOP3S(poplib.POP3_SSL):
    """POP3S (995) to `addr`, certificate checked against `fqdn`."""

    def __init__(self, fqdn: str, addr: str, context: ssl.SSLContext) -> None:
        self._addr = addr
        super().__init__(fqdn, 995, context=context, timeout=TIMEOUT)

    def _create_socket(self, timeout: float) -> socket.socket:
        raw = socket.create_connection((self._addr, self.port), timeout)
        return self.context.wrap_socket(raw, server_hostname=self.host)


@pytest.fixture(scope="session")
def pop3s(lab_hosts: dict[str, LabHost], tls: ssl.SSLContext) -> Callable[[str], LabPOP3S]:
    def connect(host: str) -> LabPOP3S:
        h = lab_hosts[host]
        return LabPOP3S(h.fqdn, h.addr, tls)
    return connect


# --- playbooks and the provider, for the tests that change the lab and put it back ----------

RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)",
                   re.MULTILINE)


def playbook(name: str, data_file: Path, *extra: str, timeout: int = 900) -> tuple[int, int, str]:
    """(rc, total changed, output) of ansible-playbook playbooks/<name> on the data copy."""
    # The controller-side dirs are the test's own (STATE_DIR), whichever inventory runs: the
    # lab's and the production-shaped one keep them in different places.
    STATE_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    dirs = {"mailgov_credentials_dir": str(STATE_DIR / "credentials"),
            "mailgov_credentials_recipients": str(STATE_DIR / "credentials" / "recipients.json"),
            "mailgov_archive_controller_dir": str(STATE_DIR / "archives")}
    cmd = [str(REPO / ".venv" / "bin" / "ansible-playbook", ), str(REPO / "playbooks" / name),
           "-e", f"mailgov_data_file={data_file}", "-e", json.dumps(dirs), *extra]
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}
    env.pop("MAILGOV_DATA", None)
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                         env=env, check=False)
    text = out.stdout + out.stderr
    changed = sum(int(m.group(3)) for m in RECAP.finditer(text))
    return out.returncode, changed, text


def ldapi(host_run: Callable[..., Result], command: str) -> Result:
    """An LDAP client command as root on mail1 over ldapi (SASL EXTERNAL)."""
    return host_run("mail1", f"{command} -Q -Y EXTERNAL -H ldapi:///")


def entry_home(host_run: Callable[..., Result], dn: str) -> str:
    """The entry's mailHomeDirectory, read on the provider (the store is named by id)."""
    res = ldapi(host_run, f"ldapsearch -LLL -o ldif-wrap=no -s base -b {shlex.quote(dn)} "
                          "mailHomeDirectory")
    homes = [line.split(": ", 1)[1] for line in res.stdout.splitlines()
             if line.startswith("mailHomeDirectory: ")]
    assert res.rc == 0 and len(homes) == 1, (res.rc, res.stdout, res.stderr)
    return homes[0]
