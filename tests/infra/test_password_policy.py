"""Password policy (docs/security.md, PW-*): slapd's ppolicy entries carry the data file's
numbers (policy.password.users / .administrators), on the provider and on the replica, and
every mail login is an LDAP bind as the user, so the policy decides for IMAP, POP3 and SMTP AUTH.

The attacks (wrong passwords until lockout, password changes) are in test_attacks_auth.py.
"""

from __future__ import annotations

import base64
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from test_attacks_lockout import expected_admin_lockout_s

DIRECTORY_HOSTS = ("mail1", "mail2")


def ldap_root(
    host: Any, base: str, filt: str, *attrs: str, scope: str = "sub"
) -> dict[str, dict[str, list[str]]]:
    """Search as the host's root (SASL EXTERNAL over ldapi): {dn: {attr: [values]}}."""
    out = host.run(
        "ldapsearch -Q -LLL -o ldif-wrap=no -Y EXTERNAL -H ldapi:/// -s "
        + scope
        + " -b "
        + shlex.quote(base)
        + " "
        + shlex.quote(filt)
        + " "
        + " ".join(shlex.quote(a) for a in attrs)
    )
    assert out.rc in (0, 32), out.stderr
    entries: dict[str, dict[str, list[str]]] = {}
    dn = ""
    for line in out.stdout.splitlines():
        m = re.match(r"^([A-Za-z0-9-]+)(::?) ?(.*)$", line)
        if not m:
            continue
        key, _, value = m.groups()
        if key == "dn":
            dn = value
            entries[dn] = {}
        elif dn:
            entries[dn].setdefault(key.lower(), []).append(value)
    return entries


def policy_entry(host: Any, base_dn: str, cn: str) -> dict[str, list[str]]:
    dn = f"cn={cn},ou=policies,{base_dn}"
    found = ldap_root(host, dn, "(objectClass=pwdPolicy)", "*", scope="base")
    assert dn in found, f"no password policy {dn} on the host"
    return found[dn]


# (data section, policy entry cn): the two people policies, on each directory server.
POLICIES = (("users", "default"), ("administrators", "administrators"))


@dataclass(frozen=True)
class PolicyCase:
    host: Any  # testinfra host
    want: dict[str, Any]  # policy.password.<which> of the data
    got: dict[str, list[str]]  # the entry on that host
    which: str = "users"
    policy: dict[str, Any] | None = None


@pytest.fixture(
    params=[(h, w, cn) for h in DIRECTORY_HOSTS for w, cn in POLICIES],
    ids=lambda p: f"{p[0]}-{p[2]}",
)
def policy_case(
    request: pytest.FixtureRequest,
    infra_host: Callable[[str], Any],
    data: dict[str, Any],
    policy: dict[str, Any],
) -> PolicyCase:
    host_name, which, cn = request.param
    host = infra_host(host_name)
    got = policy_entry(host, data["organization"]["base_dn"], cn)
    return PolicyCase(host, policy["password"][which], got, which, policy)


@pytest.mark.control("PW-01", "ppolicy entries carry the data's numbers (users, administrators)")
def test_policy_numbers_from_data(policy_case: PolicyCase) -> None:
    want, got = policy_case.want, policy_case.got
    assert got["pwdminlength"] == [str(want["min_length"])]
    assert got["pwdinhistory"] == [str(want["history"])]
    assert got["pwdmaxage"] == [str(want["max_age_days"] * 86400)]
    assert got["pwdlockout"] == ["TRUE"]
    assert got["pwdmaxfailure"] == [str(want["lockout_failures"])]
    # People: the data's minutes (0, the default: until an administrator unlocks);
    # administrators: never 0, exactly what PW-16 proves (the lab's test size there).
    if policy_case.which == "users":
        want_s = int(want.get("lockout_duration_minutes", 0)) * 60
        assert got["pwdlockoutduration"] == [str(want_s)]
    else:
        assert got["pwdlockoutduration"] == [str(expected_admin_lockout_s(policy_case.policy))]
    assert got["pwdallowuserchange"] == ["TRUE"]
    # 2: a password the server cannot check (sent pre-hashed) is refused.
    assert got["pwdcheckquality"] == ["2"]


@pytest.mark.control(
    "PW-02", "A password set by someone else must be changed first (pwdMustChange)"
)
@pytest.mark.parametrize("cn", ["default", "administrators"])
def test_must_change(infra_host: Callable[[str], Any], data: dict[str, Any], cn: str) -> None:
    got = policy_entry(infra_host("mail1"), data["organization"]["base_dn"], cn)
    assert got["pwdmustchange"] == ["TRUE"]


@pytest.mark.control("PW-03", "The overlay enforces the default policy on both directory servers")
@pytest.mark.parametrize("host", DIRECTORY_HOSTS)
def test_overlay_default(infra_host: Callable[[str], Any], data: dict[str, Any], host: str) -> None:
    found = ldap_root(
        infra_host(host),
        "cn=config",
        "(objectClass=olcPPolicyConfig)",
        "olcPPolicyDefault",
        "olcPPolicyHashCleartext",
    )
    assert len(found) == 1, found
    (attrs,) = found.values()
    assert attrs["olcppolicydefault"] == [
        f"cn=default,ou=policies,{data['organization']['base_dn']}"
    ]
    # Passwords changed in clear text are stored hashed.
    assert attrs["olcppolicyhashcleartext"] == ["TRUE"]


PWCHECK_PACKAGE = "mailgov-slapd-pwcheck"


@pytest.mark.control(
    "PW-15", "The password check module is built for the running slapd and named by the policies"
)
def test_check_module_installed_and_configured(policy_case: PolicyCase) -> None:
    h, got = policy_case.host, policy_case.got
    pkg = h.package(PWCHECK_PACKAGE)
    assert pkg.is_installed, f"{PWCHECK_PACKAGE} is not installed"
    depends = h.run(f"dpkg-query -W -f '${{Depends}}' {PWCHECK_PACKAGE}").stdout
    slapd = h.package("slapd").version
    # A module reads slapd's own structures: it must come from this very slapd's source.
    assert f"slapd (= {slapd})" in depends, (depends, slapd)
    module = got["pwdcheckmodule"][0]
    assert h.file(module).is_file, module
    assert "pwdPolicyChecker" in got["objectclass"]
    arg_values = got.get("pwdcheckmodulearg", [])
    assert len(arg_values) == 1, got
    arg = base64.b64decode(arg_values[0]).decode()
    want = policy_case.want
    lines = {line.split()[0]: line.split()[1:] for line in arg.splitlines() if line.strip()}
    for cls in want["required_classes"]:
        # class-NAME CHARS MIN MIN_FOR_POINT: at least one character of each required class.
        assert lines[f"class-{cls}"][1] == "1", (cls, arg)
    assert lines["checkPersonalData"] == ["1" if want["forbid_personal_data"] else "0"], arg


@pytest.mark.control("PW-04", "Administrators (role: admin) are under the administrators policy")
def test_admins_have_admin_policy(infra_host: Callable[[str], Any], data: dict[str, Any]) -> None:
    base = data["organization"]["base_dn"]
    admins = {
        m["address"].lower()
        for m in data["mailboxes"]
        if m.get("role") == "admin" and m.get("state", "active") != "cancelled"
    }
    assert admins, "the data names no administrator"
    found = ldap_root(
        infra_host("mail1"),
        f"ou=people,{base}",
        "(businessCategory=admin)",
        "uid",
        "pwdPolicySubentry",
    )
    by_uid = {a["uid"][0].lower(): a for a in found.values() if "uid" in a}
    missing = sorted(admins - set(by_uid))
    assert not missing, f"admins not in the directory: {missing}"
    wrong = sorted(
        u
        for u in admins
        if by_uid[u].get("pwdpolicysubentry") != [f"cn=administrators,ou=policies,{base}"]
    )
    assert not wrong, f"admins without the administrators policy: {wrong}"
    # And nobody else is.
    others = ldap_root(
        infra_host("mail1"),
        f"ou=people,{base}",
        f"(&(pwdPolicySubentry=cn=administrators,ou=policies,{base})(!(businessCategory=admin)))",
        "uid",
    )
    assert not others, f"non-admins under the administrators policy: {sorted(others)}"


@pytest.mark.control(
    "PW-05", "Mail logins are LDAP binds as the user (auth_bind), no password read"
)
@pytest.mark.parametrize("host", DIRECTORY_HOSTS)
def test_logins_bind_as_user(infra_host: Callable[[str], Any], host: str) -> None:
    h = infra_host(host)
    passdb = h.run(
        "grep -E '^[[:space:]]*auth_bind[[:space:]]*=' /etc/dovecot/dovecot-ldap-passdb.conf.ext"
    )
    assert passdb.rc == 0 and passdb.stdout.split("=")[1].strip() == "yes", passdb.stdout
    # No password attribute is fetched (pass_attrs would name userPassword=password).
    attrs = h.run("grep -iE '^[[:space:]]*pass_attrs' /etc/dovecot/dovecot-ldap-passdb.conf.ext")
    assert "userpassword" not in attrs.stdout.lower()
    # Postfix SMTP AUTH goes through Dovecot's passdb (the same binds).
    sasl = h.run("postconf -h smtpd_sasl_type")
    assert sasl.stdout.strip() == "dovecot"
    # No auth cache: a lockout or password change counts at the very next login.
    cache = h.run("doveconf -h auth_cache_size")
    assert cache.stdout.strip() in ("0", "0 B", "0B"), cache.stdout
