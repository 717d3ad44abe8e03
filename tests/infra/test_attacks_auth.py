"""Attacks on authentication, FROM the client host (docs/security.md, PW-*, MBX-*):
brute force until the directory locks the account (N from the data), password changes (own:
yes, within the policy; someone else's: no), one user reaching into another's mailbox.

Every attack uses throw-away mailboxes (authprobe.py) so no real or shared test mailbox is
locked or changed. fail2ban (roles/fail2ban) would ban the client long before N failures; the
module exempts the client's address in every jail (conftest.Fail2banBudget), because what it
proves is the directory's lockout, not the ban.

Every attack runs against every host of the inventory's `mailservers` group (`mail_host`): its
IMAP service, which binds to that host's own directory server. The mailboxes are made on the
provider, so a replica is first waited for (authprobe.wait_replicated). A password change is a
write, and writes are the provider's only (`directory_provider`): on a replica
(`directory_replica`) the tests prove the write is refused there, with its reason, then make
it on the provider and check the replica's logins follow.
"""

from __future__ import annotations

import secrets
import shlex
import time
from collections.abc import Callable
from typing import Any

import pytest
from authprobe import Probe, clear_reset, imap_steps, ldap_client, rc_of, wait_replicated

from mailgov.credentials import personal_tokens

pytestmark = pytest.mark.usefixtures("fail2ban_budget")


def refused(step: dict[str, Any]) -> bool:
    """An IMAP login refused for its credentials (RFC 5530 [AUTHENTICATIONFAILED]), not for
    another cause (e.g. [UNAVAILABLE] when the directory is down)."""
    return step["login"].startswith("NO") and "[AUTHENTICATIONFAILED]" in step["login"]

FORWARD_WAIT_S = 15.0  # a replica forwards failures and the lock to the provider (PW-11)


def is_replica(inventory_groups: dict[str, list[str]], host: str) -> bool:
    """Whether `host`'s directory server is a replica (True) or the provider (False), from the
    inventory's groups; a mail host in neither has no directory to attack."""
    if host in inventory_groups["directory_provider"]:
        return False
    assert host in inventory_groups["directory_replica"], (
        f"{host} is in neither directory_provider nor directory_replica")
    return True


def replica_refuses_password_writes(client_run: Callable[..., Any], address: str,
                                    probe: Probe, target_dn: str, provider_fqdn: str) -> None:
    """A replica takes no password write, for the user's own entry or anyone's: Password
    Modify is refused (48, its chain forwards only the host's own ppolicy writes) and a modify
    is referred to the provider (10), so no rule can be bypassed there."""
    out = ldap_client(client_run, "ldappasswd", address,
                      ["-x", "-D", probe.dn, "-w", probe.password, "-s", "Hijack-3d!pass",
                       target_dn])
    assert rc_of(out) == 48 and "Inappropriate authentication" in out.stdout, out.stdout
    ldif = f"dn: {target_dn}\nchangetype: modify\nreplace: userPassword\nuserPassword: " \
        "Hijack-3d!pass\n"
    out = ldap_client(client_run, "ldapmodify", address,
                      ["-x", "-D", probe.dn, "-w", probe.password], stdin=ldif)
    assert rc_of(out) == 10 and f"ldap://{provider_fqdn}/" in out.stdout, out.stdout


def wait_for(check: Callable[[], bool], what: str, seconds: float = FORWARD_WAIT_S) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"{what} (waited {seconds:.0f}s)"
        time.sleep(0.5)


@pytest.fixture
def probe(probes: Callable[..., Probe]) -> Probe:
    return probes("atk")


@pytest.fixture
def second_probe(probes: Callable[..., Probe]) -> Probe:
    return probes("vic")


def lock_state(host_run: Callable[..., Any], dn: str, host: str) -> str:
    out = host_run(
        host,
        "ldapsearch -Q -LLL -o ldif-wrap=no -Y EXTERNAL -H ldapi:/// -s base "
        f"-b {shlex.quote(dn)} pwdAccountLockedTime pwdFailureTime",
    )
    assert out.rc == 0, out.stderr
    return out.stdout


@pytest.mark.control(
    "PW-06", "IMAP brute force: after N failures (data) even the right password fails"
)
def test_imap_lockout_after_n_failures(
    client_run: Callable[..., Any],
    host_address: Callable[[str], str],
    host_run: Callable[..., Any],
    policy: dict[str, Any],
    probe: Probe,
    no_fail2ban_for_client: None,
    mail_host: str,
    provider: str,
) -> None:
    n = int(policy["password"]["users"]["lockout_failures"])
    address = host_address(mail_host)
    good = {"user": probe.mail, "password": probe.password}
    bad = {"user": probe.mail, "password": "Wrong-" + probe.password}
    wait_replicated(host_run, mail_host, probe.dn, provider)
    # The right password works first (the account is usable, the test can fail).
    assert imap_steps(client_run, address, [good])[0]["login"] == "OK"
    # N-1 failures: counted on the provider (a replica forwards them), not locked yet.
    results = imap_steps(client_run, address, [bad] * (n - 1))
    assert all(refused(r) for r in results), results
    wait_for(lambda: lock_state(host_run, probe.dn, provider).count("pwdFailureTime:") == n - 1,
             f"{n - 1} failures on {mail_host} not counted on {provider}")
    assert "pwdAccountLockedTime" not in lock_state(host_run, probe.dn, provider), \
        "locked too early"
    # The N-th failure locks it ...
    assert refused(imap_steps(client_run, address, [bad])[0])
    wait_for(lambda: "pwdAccountLockedTime" in lock_state(host_run, probe.dn, provider),
             f"not locked on {provider} after {n} failures on {mail_host}:\n"
             + lock_state(host_run, probe.dn, provider))
    # ... and now the right password is refused too (on the host attacked, once it knows).
    wait_replicated(host_run, mail_host, probe.dn, provider)
    after = imap_steps(client_run, address, [good])[0]
    assert refused(after), f"locked account logged in: {after}"


@pytest.mark.control("PW-07", "A user changes their own password, within the policy")
def test_user_changes_own_password(
    client_run: Callable[..., Any],
    host_address: Callable[[str], str],
    policy: dict[str, Any],
    probe: Probe,
    no_fail2ban_for_client: None,  # the old password's login is refused on purpose
    mail_host: str,
    provider: str,
    inventory_groups: dict[str, list[str]],
    host_run: Callable[..., Any],
    host_fqdn: Callable[[str], str],
) -> None:
    # The change is made where writes go (the provider); a replica must refuse it itself.
    address = host_address(provider)
    if is_replica(inventory_groups, mail_host):
        wait_replicated(host_run, mail_host, probe.dn, provider)
        replica_refuses_password_writes(client_run, host_address(mail_host), probe, probe.dn,
                                        host_fqdn(provider))
    users = policy["password"]["users"]
    bind = ["-x", "-D", probe.dn, "-w", probe.password]
    # Too short: refused by the server (19 constraintViolation), not changed.
    short = "Aa1!" + "x" * max(0, int(users["min_length"]) - 5)
    out = ldap_client(client_run, "ldappasswd", address, [*bind, "-a", probe.password, "-s", short])
    assert rc_of(out) == 19, f"a {len(short)}-character password was accepted:\n{out.stdout}"
    # A good one: accepted, and it is the one IMAP takes from now on.
    new = "N3w-" + probe.password[::-1]
    out = ldap_client(client_run, "ldappasswd", address, [*bind, "-a", probe.password, "-s", new])
    assert rc_of(out) == 0, out.stdout
    wait_replicated(host_run, mail_host, probe.dn, provider)
    res = imap_steps(
        client_run,
        host_address(mail_host),
        [{"user": probe.mail, "password": new}, {"user": probe.mail, "password": probe.password}],
    )
    assert res[0]["login"] == "OK", res
    assert refused(res[1]), res
    # History: the previous password cannot come back (pwdInHistory from the data).
    if int(users["history"]) > 0:
        out = ldap_client(
            client_run,
            "ldappasswd",
            address,
            ["-x", "-D", probe.dn, "-w", new, "-a", new, "-s", probe.password],
        )
        assert rc_of(out) == 19, f"an old password was reused:\n{out.stdout}"


@pytest.mark.control("PW-08", "A user cannot change another user's password")
def test_user_cannot_change_other_password(
    client_run: Callable[..., Any],
    host_address: Callable[[str], str],
    probe: Probe,
    second_probe: Probe,
    mail_host: str,
    provider: str,
    inventory_groups: dict[str, list[str]],
    host_run: Callable[..., Any],
    host_fqdn: Callable[[str], str],
) -> None:
    address = host_address(mail_host)
    for p in (probe, second_probe):
        wait_replicated(host_run, mail_host, p.dn, provider)
    if is_replica(inventory_groups, mail_host):
        # No write at all on a replica; the provider's refusal (50) is PW-08[provider].
        replica_refuses_password_writes(client_run, address, probe, second_probe.dn,
                                        host_fqdn(provider))
    else:
        out = ldap_client(
            client_run,
            "ldappasswd",
            address,
            ["-x", "-D", probe.dn, "-w", probe.password, "-s", "Hijack-3d!pass",
             second_probe.dn],
        )
        assert rc_of(out) == 50, f"expected insufficientAccess (50):\n{out.stdout}"
        ldif = (
            f"dn: {second_probe.dn}\nchangetype: modify\n"
            "replace: userPassword\nuserPassword: Hijack-3d!pass\n"
        )
        out = ldap_client(
            client_run, "ldapmodify", address, ["-x", "-D", probe.dn, "-w", probe.password],
            stdin=ldif
        )
        assert rc_of(out) == 50, out.stdout
    # The victim's password still works.
    wait_replicated(host_run, mail_host, second_probe.dn, provider)
    res = imap_steps(
        client_run, address, [{"user": second_probe.mail, "password": second_probe.password}]
    )
    assert res[0]["login"] == "OK", res


@pytest.mark.control("PW-09", "A password set by someone else must be changed before mail login")
def test_reset_password_must_be_changed(
    client_run: Callable[..., Any],
    host_address: Callable[[str], str],
    host_run: Callable[..., Any],
    probe: Probe,
    no_fail2ban_for_client: None,  # the reset password's login is refused on purpose
    mail_host: str,
    provider: str,
) -> None:
    # Logins on the host attacked; the reset and the user's change where writes go.
    address = host_address(mail_host)
    # An administrator (the provider's root) resets the password: ppolicy marks it pwdReset.
    temp = "Tmp-" + probe.password[::-1]
    out = host_run(
        provider,
        f"ldappasswd -Q -Y EXTERNAL -H ldapi:/// -s {shlex.quote(temp)} {shlex.quote(probe.dn)}",
    )
    assert out.rc == 0, out.stderr
    state = host_run(
        provider,
        f"ldapsearch -Q -LLL -Y EXTERNAL -H ldapi:/// -s base -b {shlex.quote(probe.dn)} pwdReset",
    ).stdout
    if "pwdReset: TRUE" not in state:
        # The root DN is outside ppolicy; the lifecycle tools set the flag explicitly.
        host_run(
            provider,
            "ldapmodify -Q -Y EXTERNAL -H ldapi:/// <<'E'\n"
            f"dn: {probe.dn}\nchangetype: modify\nreplace: pwdReset\npwdReset: TRUE\nE",
        )
    wait_replicated(host_run, mail_host, probe.dn, provider)
    res = imap_steps(client_run, address, [{"user": probe.mail, "password": temp}])
    assert res[0]["login"].startswith("NO"), f"logged in with a reset password: {res}"
    # The user changes it (as themselves) and may log in.
    new = "Own-" + probe.password
    out = ldap_client(
        client_run, "ldappasswd", host_address(provider),
        ["-x", "-D", probe.dn, "-w", temp, "-a", temp, "-s", new]
    )
    assert rc_of(out) == 0, out.stdout
    assert (
        "pwdReset"
        not in host_run(
            provider,
            "ldapsearch -Q -LLL -Y EXTERNAL -H ldapi:/// "
            f"-s base -b {shlex.quote(probe.dn)} pwdReset",
        ).stdout
    )
    wait_replicated(host_run, mail_host, probe.dn, provider)
    res = imap_steps(client_run, address, [{"user": probe.mail, "password": new}])
    assert res[0]["login"] == "OK", res
    clear_reset(host_run, probe.dn)


# A Vietnamese name with diacritics, so the server must fold it as mailgov does (Hường -> huong).
PERSONAL_NAME = "Nguyễn Thị Hường"


@pytest.fixture
def named_probe(probes: Callable[..., Probe]) -> Probe:
    return probes("pd", name=PERSONAL_NAME)


def _change_rc(client_run: Callable[..., Any], address: str, probe: Probe, new: str) -> int:
    bind = ["-x", "-D", probe.dn, "-w", probe.password, "-a", probe.password]
    return rc_of(ldap_client(client_run, "ldappasswd", address, [*bind, "-s", new]))


@pytest.mark.control("PW-10", "Character classes and personal data are refused in new passwords")
def test_password_quality_classes_and_personal_data(
    client_run: Callable[..., Any],
    host_address: Callable[[str], str],
    policy: dict[str, Any],
    named_probe: Probe,
    mail_host: str,
    provider: str,
    inventory_groups: dict[str, list[str]],
    host_run: Callable[..., Any],
    host_fqdn: Callable[[str], str],
) -> None:
    if is_replica(inventory_groups, mail_host):
        # The quality rules judge a write; a replica takes none (not even a compliant one), so
        # nothing can get past them there: PW-10[provider] proves the rules themselves.
        wait_replicated(host_run, mail_host, named_probe.dn, provider)
        replica_refuses_password_writes(client_run, host_address(mail_host), named_probe,
                                        named_probe.dn, host_fqdn(provider))
        return
    users = policy["password"]["users"]
    required = list(users["required_classes"])
    assert required, "the data requires no character classes"
    address = host_address(mail_host)
    length = int(users["min_length"]) + 4
    samples = {"upper": "QWZXRT", "lower": "qwzxrt", "digit": "739468", "special": "#%!&*?"}
    # One class missing at a time: refused (19 constraintViolation), long enough otherwise.
    for missing in required:
        pool = "".join(samples[c] for c in required if c != missing)
        candidate = (pool * length)[:length]
        assert _change_rc(client_run, address, named_probe, candidate) == 19, (
            f"a password without {missing} characters was accepted: {candidate!r}"
        )
    # Personal data: every token mailgov derives (credentials.personal_tokens, minus the
    # birth date, which the directory does not hold), in the cases and spellings people type.
    tokens = personal_tokens(local=named_probe.uid, name=PERSONAL_NAME)
    assert {"nguyen", "huong", "nguyenthihuong"} <= set(tokens), tokens
    spellings = [f"Q7!z{t}K#" for t in tokens] + ["Q7!zHƯỜNG#k", "Q7!zHường#k", "X9#Ng-uy-en!k"]
    for candidate in spellings:
        assert _change_rc(client_run, address, named_probe, candidate) == 19, (
            f"a password with personal data was accepted: {candidate!r}"
        )
    # A password that meets every rule is accepted: the refusals above came from the rules.
    good = "Q7!zW" + secrets.token_hex(6) + "#K"
    assert _change_rc(client_run, address, named_probe, good) == 0, "a good password was refused"


@pytest.mark.control("MBX-01", "A user cannot open another user's mailbox over IMAP")
def test_cannot_select_other_mailbox(
    client_run: Callable[..., Any],
    host_address: Callable[[str], str],
    probe: Probe,
    second_probe: Probe,
    mail_host: str,
    provider: str,
    host_run: Callable[..., Any],
) -> None:
    address = host_address(mail_host)
    for p in (probe, second_probe):
        wait_replicated(host_run, mail_host, p.dn, provider)
    # The victim logs in once, so its mailbox exists on disk.
    first = imap_steps(
        client_run, address, [{"user": second_probe.mail, "password": second_probe.password}]
    )
    assert first[0]["login"] == "OK", first
    victim = second_probe.mail
    boxes = [
        f"shared/{victim}/INBOX",
        f"shared/{victim}",
        f"~{second_probe.uid}/INBOX",
        f"../{second_probe.uid}/Maildir",
        f"#shared/{victim}/INBOX",
    ]
    # A fresh session's LIST first (trying a shared/<user> name instantiates that user's
    # namespace, empty and \Noselect, for the rest of the session), then the SELECTs.
    listed, res = imap_steps(
        client_run,
        address,
        [
            {"user": probe.mail, "password": probe.password, "list": True},
            {"user": probe.mail, "password": probe.password, "select": boxes},
        ],
    )
    assert listed["login"] == "OK" and listed.get("list"), listed
    assert not [line for line in listed["list"] if victim in line], listed["list"]
    assert res["login"] == "OK", res
    opened = {box: r for box, r in res.get("select", {}).items() if r.startswith("OK")}
    assert not opened, f"{probe.mail} opened {opened}"
    assert len(res.get("select", {})) == len(boxes), res


@pytest.mark.control(
    "MBX-02", "The master-user login (victim*attacker) is refused to non-delegates"
)
def test_master_user_trick_refused(
    client_run: Callable[..., Any],
    host_address: Callable[[str], str],
    probe: Probe,
    second_probe: Probe,
    no_fail2ban_for_client: None,  # the master-user logins are refused on purpose
    mail_host: str,
    provider: str,
    host_run: Callable[..., Any],
) -> None:
    address = host_address(mail_host)
    for p in (probe, second_probe):
        wait_replicated(host_run, mail_host, p.dn, provider)
    tries = [
        {"user": f"{second_probe.mail}*{probe.mail}", "password": probe.password},
        {"user": f"{probe.mail}*{second_probe.mail}", "password": probe.password},
    ]
    res = imap_steps(client_run, address, tries)
    assert all(refused(r) for r in res), res
    # Control: the attacker's own login works.
    own = imap_steps(client_run, address, [{"user": probe.mail, "password": probe.password}])
    assert own[0]["login"] == "OK", own
