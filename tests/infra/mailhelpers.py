"""Helpers shared by the mail authentication and abuse tests (test_mailauth.py,
test_abuse.py, test_attacks_abuse.py): known mailbox passwords, sending with swaks FROM the
client host, reading a delivered message on mail1 with doveadm, the lab's LDAP lock attribute.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from lab import labenv

REPO = Path(__file__).resolve().parents[2]


def lab_dir() -> Path:
    """The instance's state dir (lab.labenv, as lab/lab and conftest.py)."""
    return labenv.lab_dir(REPO, labenv.lab_id())


def known_passwords() -> dict[str, str]:
    """{address: password} the directory loader wrote for test mailboxes."""
    path = lab_dir() / "secrets" / "test-mailboxes.json"
    if not path.is_file():
        if os.environ.get("MAILGOV_LAB_REQUIRED") == "1":
            pytest.fail(f"no {path}: converge the lab (load_directory.yml) first")
        pytest.skip(f"no {path}: converge the lab (load_directory.yml) first")
    return {k.lower(): v for k, v in json.loads(path.read_text(encoding="utf-8")).items()}


def active_users(host_run: Callable[..., Any], passwords: dict[str, str],
                 base_dn: str) -> list[str]:
    """Mailboxes with a known password that are enabled and NOT locked, as the directory says."""
    out = host_run("mail1", "ldapsearch -Q -LLL -Y EXTERNAL -H ldapi:/// -b "
                   + shlex.quote(base_dn) + " '(&(objectClass=inetOrgPerson)(mailEnabled=TRUE)"
                   "(!(pwdAccountLockedTime=*)))' mail | sed -n 's/^mail: //p'")
    assert out.rc == 0, out.stderr
    present = {line.strip().lower() for line in out.stdout.splitlines() if line.strip()}
    users = sorted(a for a in passwords if a in present)
    if len(users) < 3:
        pytest.fail(f"need 3 unlocked mailboxes with known passwords, found {users}")
    return users


_CLIENT_READY: set[str] = set()


def client_packages(client_run: Callable[..., Any], *packages: str) -> None:
    """Install Debian packages on the client (through the lab's package proxy) once:
    swaks needs libnet-ssleay-perl for STARTTLS, the DKIM verifier python3-dkim."""
    missing = [p for p in packages if p not in _CLIENT_READY]
    if not missing:
        return
    have = client_run("dpkg-query -W -f='${Package} ${Status}\\n' " + " ".join(missing))
    if any(f"{p} install ok installed" not in have.stdout for p in missing):
        out = client_run("DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
                         + " ".join(missing), timeout=600)
        assert out.rc == 0, out.stdout[-600:] + out.stderr[-600:]
    _CLIENT_READY.update(missing)


def token() -> str:
    return f"s2-{uuid.uuid4().hex[:12]}"


def swaks(client_run: Callable[..., Any], server: str, port: int, user: str, password: str,
          sender: str, to: str, subject: str, extra: list[str] | None = None,
          timeout: int = 120) -> Any:
    """Submit one message from the client host (STARTTLS on 587, AUTH)."""
    client_packages(client_run, "libnet-ssleay-perl")
    cmd = ["swaks", "--server", server, "--port", str(port), "--tls",
           "--auth", "PLAIN", "--auth-user", user, "--auth-password", password,
           "--from", sender, "--to", to, "--header", f"Subject: {subject}",
           "--timeout", "60"] + (extra or [])
    return client_run(cmd, timeout=timeout)


def fetch_delivered(host_run: Callable[..., Any], user: str, subject: str,
                    timeout: float = 90) -> str | None:
    """The stored message with `subject` in user's INBOX on mail1, byte for byte (the Maildir
    file, base64 over ssh: a DKIM check must see exactly what was delivered)."""
    deadline = time.monotonic() + timeout
    cmd = (f"home=$(doveadm user -f home {shlex.quote(user)}) && "
           f"f=$(grep -l -F {shlex.quote(subject)} \"$home\"/Maildir/new/* "
           "\"$home\"/Maildir/cur/* 2>/dev/null | head -1) && test -n \"$f\" && base64 -w0 \"$f\"")
    while True:
        out = host_run("mail1", cmd)
        if out.rc == 0 and out.stdout.strip():
            return base64.b64decode(out.stdout.strip()).decode("utf-8", "surrogateescape")
        if time.monotonic() > deadline:
            return None
        time.sleep(2)
