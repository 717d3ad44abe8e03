"""LDAP access control (docs/security.md, LDAP-*), tried FROM the client host: anonymous gets
the root DSE and a bind, nothing else; nobody but the replicator reads password hashes; a user
reads no one's password state and writes nothing but their own password; the service accounts
read only what their lookups need and write nothing.

Two throw-away mailboxes (authprobe.py) are the users; the service accounts' passwords are the
lab's generated secrets on the controller.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from authprobe import Probe, ldap_client, make_probe, rc_of, remove_probe
from conftest import DATA_FILE, VENV_BIN

from lab import labenv

REPO = Path(__file__).resolve().parents[2]


def secrets_dir() -> Path:
    """The instance's generated secrets (lab.labenv, as lab/lab and conftest.py)."""
    return labenv.lab_dir(REPO, labenv.lab_id()) / "secrets"


def ca_file() -> Path:
    """The CA both inventories keep in the instance's state dir (pki__ca_dir)."""
    return secrets_dir().parent / "pki" / "ca.crt"


def service_password(name: str) -> str:
    path = secrets_dir() / f"ldap-{name}"
    if not path.is_file():
        # A lab that is not converged: skip for a developer, fail in CI (as conftest.lab_missing).
        if os.environ.get("MAILGOV_LAB_REQUIRED") == "1":
            pytest.fail(f"lab required but not usable: no {path}: converge the lab first")
        pytest.skip(f"lab not up: no {path}: converge the lab first")
    return path.read_text(encoding="utf-8").split()[0]


@pytest.fixture(scope="module")
def base_dn(data: dict[str, Any]) -> str:
    return str(data["organization"]["base_dn"])


@pytest.fixture(scope="module")
def provider(host_address: Callable[[str], str]) -> str:
    return host_address("mail1")


@pytest.fixture(scope="module")
def users(
    host_run: Callable[..., Any], data: dict[str, Any], mail1: Any
) -> Iterator[tuple[Probe, Probe]]:
    org = data["organization"]
    a = make_probe(host_run, org["base_dn"], org["domain"], "acla")
    b = make_probe(host_run, org["base_dn"], org["domain"], "aclb")
    try:
        yield a, b
    finally:
        remove_probe(host_run, a)
        remove_probe(host_run, b)


def search(
    client_run: Callable[..., Any],
    address: str,
    bind: tuple[str, str] | None,
    base: str,
    filt: str,
    *attrs: str,
    scope: str = "sub",
    starttls: bool = True,
) -> Any:
    auth = ["-x"] + (["-D", bind[0], "-w", bind[1]] if bind else [])
    return ldap_client(
        client_run,
        "ldapsearch",
        address,
        [*auth, "-LLL", "-o", "ldif-wrap=no", "-s", scope, "-b", base, filt, *attrs],
        starttls=starttls,
    )


def dns(out: Any) -> list[str]:
    return [line[4:] for line in out.stdout.splitlines() if line.startswith("dn: ")]


def attr_lines(out: Any, attr: str) -> list[str]:
    a = attr.lower() + ":"
    return [line for line in out.stdout.splitlines() if line.lower().startswith(a)]


@pytest.mark.control("LDAP-01", "Anonymous reads nothing under the suffix (no enumeration)")
@pytest.mark.parametrize("host", ["mail1", "mail2"])
def test_anonymous_cannot_enumerate(
    client_run: Callable[..., Any],
    host_address: Callable[[str], str],
    base_dn: str,
    users: tuple[Probe, Probe],
    host: str,
) -> None:
    address = host_address(host)
    for base in (
        base_dn,
        f"ou=people,{base_dn}",
        f"ou=services,{base_dn}",
        f"ou=policies,{base_dn}",
        users[0].dn,
    ):
        out = search(client_run, address, None, base, "(objectClass=*)", "*", "+")
        assert dns(out) == [], f"anonymous read {dns(out)[:5]} under {base} on {host}"
        assert rc_of(out) in (0, 32), out.stdout  # 32 noSuchObject: not even existence
    # Guessing attributes by filter gives nothing either.
    out = search(client_run, address, None, base_dn, f"(mail={users[0].mail})", "dn")
    assert dns(out) == []


@pytest.mark.control("LDAP-02", "Anonymous can bind and read the root DSE (and only that)")
def test_anonymous_root_dse(client_run: Callable[..., Any], provider: str, base_dn: str) -> None:
    # The positive control for LDAP-01: the anonymous connection itself works.
    out = search(
        client_run,
        provider,
        None,
        "",
        "(objectClass=*)",
        "namingContexts",
        "supportedExtension",
        scope="base",
    )
    assert rc_of(out) == 0, out.stdout
    assert f"namingContexts: {base_dn}" in out.stdout


@pytest.mark.control("LDAP-03", "No user or service account reads password hashes")
def test_nobody_reads_password_hashes(
    client_run: Callable[..., Any], provider: str, base_dn: str, users: tuple[Probe, Probe]
) -> None:
    a, b = users
    binds = {
        "self": (a.dn, a.password),
        "postfix": (f"cn=postfix,ou=services,{base_dn}", service_password("postfix")),
        "dovecot": (f"cn=dovecot,ou=services,{base_dn}", service_password("dovecot")),
        "mailgov": (f"cn=mailgov,ou=services,{base_dn}", service_password("mailgov")),
        "planner": (f"cn=planner,ou=services,{base_dn}", service_password("planner")),
    }
    for who, bind in binds.items():
        for target in (a, b):
            out = search(
                client_run,
                provider,
                bind,
                target.dn,
                "(objectClass=*)",
                "userPassword",
                "pwdHistory",
                scope="base",
            )
            assert rc_of(out) in (0, 32), f"{who}: {out.stdout}"
            assert not attr_lines(out, "userPassword"), f"{who} read {target.uid}'s userPassword"
            assert not attr_lines(out, "pwdHistory"), f"{who} read {target.uid}'s pwdHistory"
    # Positive control: the bind as the user worked (it reads its own mail attribute).
    out = search(client_run, provider, binds["self"], a.dn, "(objectClass=*)", "mail", scope="base")
    assert f"mail: {a.mail}" in out.stdout, out.stdout


@pytest.mark.control("LDAP-04", "A user reads no one else's password state")
def test_user_cannot_read_others_password_state(
    client_run: Callable[..., Any],
    provider: str,
    host_run: Callable[..., Any],
    users: tuple[Probe, Probe],
) -> None:
    a, b = users
    # Give B some state: one failed bind (pwdFailureTime).
    search(
        client_run, provider, (b.dn, "wrong-" + b.password), b.dn, "(objectClass=*)", scope="base"
    )
    root = host_run(
        "mail1", f"ldapsearch -Q -LLL -Y EXTERNAL -H ldapi:/// -s base -b '{b.dn}' pwdFailureTime"
    )
    assert "pwdFailureTime:" in root.stdout, "the failed bind left no state to hide"
    out = search(
        client_run,
        provider,
        (a.dn, a.password),
        b.dn,
        "(objectClass=*)",
        "pwdFailureTime",
        "pwdChangedTime",
        "pwdAccountLockedTime",
        "pwdReset",
        "pwdPolicySubentry",
        "pwdLastSuccess",
        scope="base",
    )
    # The bind as A worked and the search succeeded (result 0: B's entry is visible, only its
    # password state is not); a failed bind (49) would also return no pwd* lines.
    assert rc_of(out) == 0, f"bind or search as {a.uid} failed: {out.stdout}"
    assert f"dn: {b.dn}" in out.stdout.replace("\n ", ""), out.stdout
    assert not [line for line in out.stdout.splitlines() if line.lower().startswith("pwd")], (
        out.stdout
    )


@pytest.mark.control("LDAP-05", "A user cannot change their own entry except the password")
@pytest.mark.parametrize(
    "change",
    [
        "replace: mailQuota\nmailQuota: 99999999",
        "replace: mailEnabled\nmailEnabled: TRUE",
        "add: mailForwardingAddress\nmailForwardingAddress: attacker@example.org",
        "add: mailAlias\nmailAlias: postmaster@monre.gov.vn",
        "replace: pwdPolicySubentry\npwdPolicySubentry: cn=services,ou=policies,{base}",
        "add: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z",
    ],
)
def test_user_cannot_write_own_entry(
    client_run: Callable[..., Any],
    provider: str,
    base_dn: str,
    users: tuple[Probe, Probe],
    change: str,
) -> None:
    a, _ = users
    ldif = f"dn: {a.dn}\nchangetype: modify\n{change.format(base=base_dn)}\n"
    out = ldap_client(
        client_run, "ldapmodify", provider, ["-x", "-D", a.dn, "-w", a.password], stdin=ldif
    )
    assert rc_of(out) == 50, f"expected insufficientAccess (50):\n{out.stdout}"


@pytest.mark.control("LDAP-06", "Service accounts: read what their lookups need, write nothing")
def test_service_accounts_least_rights(
    client_run: Callable[..., Any], provider: str, base_dn: str, users: tuple[Probe, Probe]
) -> None:
    a, _ = users
    postfix = (f"cn=postfix,ou=services,{base_dn}", service_password("postfix"))
    dovecot = (f"cn=dovecot,ou=services,{base_dn}", service_password("dovecot"))
    # What they need: Postfix the addresses, Dovecot also the home and quota.
    out = search(
        client_run, provider, postfix, a.dn, "(objectClass=*)", "mail", "uid", "cn", scope="base"
    )
    assert f"mail: {a.mail}" in out.stdout, out.stdout
    assert not attr_lines(out, "uid") and not attr_lines(out, "cn"), "postfix reads names"
    out = search(
        client_run, provider, dovecot, a.dn, "(objectClass=*)", "mailHomeDirectory", scope="base"
    )
    assert f"mailHomeDirectory: {a.home}" in out.stdout, out.stdout
    for who, bind in (("postfix", postfix), ("dovecot", dovecot)):
        # Nothing of the other service accounts or the policies.
        out = search(client_run, provider, bind, f"ou=services,{base_dn}", "(objectClass=*)", "dn")
        assert [
            d for d in dns(out) if not d.lower().startswith(bind[0].split(",")[0].lower())
        ] == [], f"{who} sees other service accounts: {dns(out)}"
        out = search(client_run, provider, bind, f"ou=policies,{base_dn}", "(objectClass=*)", "*")
        assert dns(out) == [], f"{who} reads the password policies"
        # No writes at all.
        ldif = f"dn: {a.dn}\nchangetype: modify\nreplace: mailEnabled\nmailEnabled: FALSE\n"
        out = ldap_client(
            client_run, "ldapmodify", provider, ["-x", "-D", bind[0], "-w", bind[1]], stdin=ldif
        )
        assert rc_of(out) == 50, f"{who} could write: {out.stdout}"


@pytest.mark.control("LDAP-08", "The planner account plans exactly as the reconciler and writes "
                     "nothing (merge-request pipelines bind with it)")
def test_planner_reads_what_a_plan_needs_and_writes_nothing(
    client_run: Callable[..., Any], provider: str, base_dn: str, users: tuple[Probe, Probe],
    host_address: Callable[[str], str], tmp_path: Path,
) -> None:
    a, _ = users
    planner = (f"cn=planner,ou=services,{base_dn}", service_password("planner"))
    out = search(client_run, provider, planner, a.dn, "(objectClass=*)", "mail",
                 "mailEnabled", "userPassword", scope="base")
    assert f"mail: {a.mail}" in out.stdout and attr_lines(out, "mailEnabled"), out.stdout
    assert not attr_lines(out, "userPassword"), "the planner read a password hash"
    # No writes: the same modification the reconciler may make is refused (50).
    ldif = f"dn: {a.dn}\nchangetype: modify\nreplace: mailEnabled\nmailEnabled: FALSE\n"
    out = ldap_client(client_run, "ldapmodify", provider,
                      ["-x", "-D", planner[0], "-w", planner[1]], stdin=ldif)
    assert rc_of(out) == 50, f"the planner could write: {out.stdout}"
    # Not even the reconcile lock: it cannot hold up or take over an apply.
    ldif = (f"dn: cn=reconcile-lock,ou=services,{base_dn}\nchangetype: add\n"
            "objectClass: applicationProcess\ncn: reconcile-lock\n")
    out = ldap_client(client_run, "ldapadd", provider,
                      ["-x", "-D", planner[0], "-w", planner[1]], stdin=ldif)
    assert rc_of(out) == 50, f"the planner could add the lock: {out.stdout}"
    # Positive control: `mailgov plan` bound as the planner sees what bound as the reconciler
    # sees (the same changes: none on a converged lab), so merge requests plan with it.
    plans = {}
    for who in ("planner", "mailgov"):
        pw = tmp_path / who
        pw.write_text(service_password(who))
        run = subprocess.run(
            [str(VENV_BIN / "mailgov"), "plan", str(DATA_FILE), "--format", "json",
             "--ldap-uri", f"ldap://{host_address('mail1')}",
             "--bind-dn", f"cn={who},ou=services,{base_dn}", "--password-file", str(pw),
             "--ca-file", str(ca_file())],
            capture_output=True, text=True, timeout=300, check=False)
        assert run.returncode in (0, 4), f"{who}: {run.stderr}"
        plans[who] = json.loads(run.stdout)
    assert plans["planner"]["changes"] == plans["mailgov"]["changes"]
    assert plans["planner"]["drift"] == plans["mailgov"]["drift"]


@pytest.mark.control("LDAP-07", "Simple binds need TLS: a password in clear is refused")
@pytest.mark.parametrize("host", ["mail1", "mail2"])
def test_bind_without_tls_refused(
    client_run: Callable[..., Any],
    host_address: Callable[[str], str],
    users: tuple[Probe, Probe],
    host: str,
) -> None:
    a, _ = users
    out = search(
        client_run,
        host_address(host),
        (a.dn, a.password),
        a.dn,
        "(objectClass=*)",
        "dn",
        scope="base",
        starttls=False,
    )
    # 13 confidentialityRequired: refused before the password is looked at.
    assert rc_of(out) == 13, out.stdout
    with_tls = search(
        client_run,
        host_address(host),
        (a.dn, a.password),
        a.dn,
        "(objectClass=*)",
        "mail",
        scope="base",
    )
    assert rc_of(with_tls) == 0, with_tls.stdout
