"""Throw-away mailboxes for the authentication and access-control attacks (test_ldap_acl.py,
test_attacks_auth.py): created on the provider as its root, with a known password, removed
afterwards, so locking one out or changing its password touches no real or shared test
mailbox. Also: binds and IMAP logins FROM the client host.
"""

from __future__ import annotations

import json
import re
import secrets
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

PROVIDER = "mail1"
CA_ON_CLIENT = "/etc/ssl/mailgov/ca.crt"


@dataclass(frozen=True)
class Probe:
    uid: str
    dn: str
    mail: str
    password: str
    home: str


def strong_password() -> str:
    """Upper, lower, digit and special, longer than any policy minimum in the data."""
    return "Pr0b-" + secrets.token_urlsafe(12) + "!x9Q"


def root_ldif(host_run: Callable[..., Any], tool: str, ldif: str, host: str = PROVIDER) -> Any:
    """ldapadd/ldapmodify as the host's root (ldapi, SASL EXTERNAL) with LDIF on stdin."""
    cmd = f"{tool} -Q -Y EXTERNAL -H ldapi:/// <<'MAILGOV_LDIF'\n{ldif}\nMAILGOV_LDIF"
    return host_run(host, cmd)


def make_probe(
    host_run: Callable[..., Any], base_dn: str, domain: str, tag: str, name: str | None = None
) -> Probe:
    """A throw-away person; ``name`` (full name, surname first) defaults to "Probe <tag>"."""
    uid = f"s1probe-{tag}-{secrets.token_hex(3)}"
    dn = f"uid={uid},ou=people,{base_dn}"
    mail = f"{uid}@{domain}"
    home = f"/var/vmail/{domain}/{uid}"
    password = strong_password()
    full = name or f"Probe {tag}"
    ldif = "\n".join(
        [
            f"dn: {dn}",
            "objectClass: top",
            "objectClass: inetOrgPerson",
            "objectClass: PostfixBookMailAccount",
            f"uid: {uid}",
            f"cn: {full}",
            f"sn: {full.split()[0]}",
            f"givenName: {full.split()[-1]}",
            "businessCategory: staff",
            f"mail: {mail}",
            f"mailAlias: {mail}",
            "mailEnabled: TRUE",
            "mailQuota: 102400",
            f"mailHomeDirectory: {home}",
            f"userPassword: {password}",
        ]
    )
    out = root_ldif(host_run, "ldapadd", ldif)
    assert out.rc == 0, f"cannot add probe {dn}: {out.stderr or out.stdout}"
    clear_reset(host_run, dn)
    return Probe(uid, dn, mail, password, home)


def clear_reset(host_run: Callable[..., Any], dn: str) -> None:
    """Remove pwdReset (set when someone else than the owner sets a password)."""
    out = root_ldif(host_run, "ldapmodify", f"dn: {dn}\nchangetype: modify\ndelete: pwdReset")
    assert out.rc in (0, 16), f"cannot clear pwdReset on {dn}: {out.stderr}"  # 16: absent


def remove_probe(host_run: Callable[..., Any], probe: Probe) -> None:
    host_run(
        PROVIDER,
        f"ldapdelete -Q -Y EXTERNAL -H ldapi:/// {shlex.quote(probe.dn)}; "
        f"rm -rf {shlex.quote(probe.home)}",
    )


def ldap_client(
    client_run: Callable[..., Any],
    tool: str,
    address: str,
    args: list[str],
    stdin: str | None = None,
    starttls: bool = True,
) -> Any:
    """An OpenLDAP client tool run on the client host against address (StartTLS by default)."""
    cmd = [
        "env",
        f"LDAPTLS_CACERT={CA_ON_CLIENT}",
        "LDAPTLS_REQCERT=demand",
        tool,
        "-H",
        f"ldap://{address}",
        *(["-ZZ"] if starttls else []),
        *args,
    ]
    line = shlex.join(cmd) + " 2>&1"
    if stdin is not None:
        line += f" <<'MAILGOV_LDIF'\n{stdin}\nMAILGOV_LDIF"
    # The exit code on a line of its own (after the here-document, if any).
    return client_run(line + '\necho "rc=$?"')


def rc_of(out: Any) -> int:
    """The LDAP result code of a client tool run by ldap_client.

    ldappasswd exits 1 on any refusal and prints "Result: Insufficient access (50)";
    ldapmodify prints "ldap_modify: ... (50)": the code in parentheses is the server's answer.
    Otherwise the exit code the command line printed (rc=N), which is the result code.
    """
    lines = out.stdout.splitlines()
    for line in reversed(lines):
        m = re.match(r"^(?:Result|ldap_\w+): .*\((\d+)\)\s*$", line)
        if m:
            return int(m.group(1))
    for line in reversed(lines):
        if line.startswith("rc="):
            return int(line[3:])
    raise AssertionError(f"no exit code in output: {out.stdout} {out.stderr}")


IMAP_SCRIPT = r"""
import imaplib, json, ssl, sys
host, ca = sys.argv[1], sys.argv[2]
steps = json.loads(sys.stdin.read())
ctx = ssl.create_default_context(cafile=ca)
ctx.check_hostname = False  # the lab addresses are in the certificates; names vary by instance
results = []
for step in steps:
    try:
        c = imaplib.IMAP4_SSL(host, 993, ssl_context=ctx, timeout=40)
    except Exception as exc:
        results.append({"login": "CONNECT-ERROR " + repr(exc)})
        continue
    res = {}
    try:
        c.login(step["user"], step["password"])
        res["login"] = "OK"
        for box in step.get("select", []):
            typ, data = c.select('"' + box + '"', readonly=True)
            res.setdefault("select", {})[box] = typ + " " + b" ".join(
                d for d in data if isinstance(d, bytes)).decode(errors="replace")
        if step.get("list"):
            typ, data = c.list('""', '"*"')
            res["list"] = [d.decode(errors="replace") for d in data if isinstance(d, bytes)]
    except imaplib.IMAP4.error as exc:
        res.setdefault("login", "NO " + str(exc))
    except Exception as exc:
        res.setdefault("login", "ERROR " + repr(exc))
    finally:
        try:
            c.logout()
        except Exception:
            pass
    results.append(res)
print(json.dumps(results))
"""


def imap_steps(
    client_run: Callable[..., Any], address: str, steps: list[dict[str, Any]], timeout: int = 600
) -> list[dict[str, Any]]:
    """Run IMAP logins (and SELECT/LIST) from the client host, one connection per step."""
    line = (
        shlex.join(["python3", "-c", IMAP_SCRIPT, address, CA_ON_CLIENT])
        + f" <<'MAILGOV_JSON'\n{json.dumps(steps)}\nMAILGOV_JSON"
    )
    out = client_run(line, timeout=timeout)
    assert out.rc == 0, f"IMAP script failed: {out.stderr[-600:]}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def entry_csn(host_run: Callable[..., Any], host: str, dn: str) -> str | None:
    """The entry's entryCSN on one directory server (None: no such entry there)."""
    out = host_run(host, "ldapsearch -Q -LLL -o ldif-wrap=no -Y EXTERNAL -H ldapi:/// -s base "
                   f"-b {shlex.quote(dn)} entryCSN")
    m = re.search(r"^entryCSN: (\S+)", out.stdout, re.M)
    return m.group(1) if m else None


def wait_replicated(host_run: Callable[..., Any], host: str, dn: str,
                    provider: str = PROVIDER, timeout: float = 30) -> None:
    """Wait until `host`'s directory holds the provider's latest change of `dn` (syncrepl;
    nothing to wait for on the provider itself): a test against a replica's services must
    not race the replication of what it just wrote."""
    if host == provider:
        return
    want = entry_csn(host_run, provider, dn)
    deadline = time.monotonic() + timeout
    while (got := entry_csn(host_run, host, dn)) != want:
        assert time.monotonic() < deadline, (
            f"{dn} not replicated to {host} in {timeout:.0f}s: {got} != {want}")
        time.sleep(0.5)
