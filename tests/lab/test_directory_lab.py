"""The directory on the lab hosts: TLS, service accounts' rights, and provider → replica.

Run after `lab/lab up` and `ansible-playbook playbooks/site.yml`:
    .venv/bin/python -m pytest -m lab tests/lab/test_directory_lab.py
Talks LDAP from the controller to the lab addresses (ldap3), and writes on the provider as its
root over ssh (ldapi, SASL EXTERNAL), the same way the roles do. Expected values come from the
data file through mailgov.directory, never typed twice.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import ldap3  # a dependency of mailgov itself: never a reason to skip
import pytest
import yaml
from conftest import purged_addresses

from lab import labenv
from mailgov.directory import desired_entries

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parents[2]


LAB_ID = labenv.lab_id()  # tests/lab/conftest.py has refused a bad MAILGOV_LAB_ID already
LAB_DIR = labenv.lab_dir(REPO, LAB_ID)
LAB = LAB_DIR
SSH_CONFIG = LAB / "ssh_config"
CA = LAB / "pki" / "ca.crt"
SECRETS = LAB / "secrets"
DATA = REPO / "data" / "mailboxes.yaml"
SERVERS = {"mail1": f"10.210.{LAB_ID}.11", "mail2": f"10.210.{LAB_ID}.12"}
REPLICATION_WAIT_S = 10.0

if not (SSH_CONFIG.exists() and CA.exists() and (SECRETS / "ldap-postfix").exists()):
    # Same rule as tests/lab/conftest.py: in CI after `lab up` a missing lab is an error.
    reason = "the lab is not up and converged (no .lab/ssh_config, CA or secrets)"
    if os.environ.get("MAILGOV_LAB_REQUIRED") == "1":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def secret(name: str) -> str:
    return (SECRETS / name).read_text(encoding="utf-8").strip()


@pytest.fixture(scope="module")
def entries() -> list:
    return desired_entries(yaml.safe_load(DATA.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def base_dn(entries: list) -> str:
    return entries[0].dn.split(",", 1)[1]


def base_of(dn: str) -> str:
    return dn.split(",", 2)[2]


def service_dn(base_dn: str, name: str) -> str:
    return f"cn={name},ou=services,{base_dn}"


def connect(host: str, mode: str, user: str | None = None, password: str | None = None):
    """An ldap3 connection that verifies the lab CA; mode is 'starttls', 'ldaps' or 'plain'."""
    tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(CA),
                    version=ssl.PROTOCOL_TLS_CLIENT)
    server = ldap3.Server(SERVERS[host], port=636 if mode == "ldaps" else 389,
                          use_ssl=mode == "ldaps", tls=tls, connect_timeout=5)
    conn = ldap3.Connection(server, user=user, password=password, receive_timeout=10,
                            raise_exceptions=False, auto_referrals=False)
    conn.open()
    if mode == "starttls":
        assert conn.start_tls(), f"StartTLS failed on {host}: {conn.result}"
    return conn


def bound(host: str, mode: str, user: str, password: str):
    conn = connect(host, mode, user, password)
    assert conn.bind(), f"bind as {user} on {host} ({mode}) failed: {conn.result}"
    return conn


def on_provider(ldif: str, command: str = "ldapmodify") -> None:
    """Write on mail1 as its root over ldapi (the manager identity the roles use)."""
    subprocess.run(
        ["ssh", "-F", str(SSH_CONFIG), "mail1", command, "-Q", "-Y", "EXTERNAL", "-H", "ldapi:///"],
        input=ldif, text=True, check=True, capture_output=True, timeout=30,
    )


def wait_for(check, timeout: float = REPLICATION_WAIT_S) -> float:
    """Seconds until check() is true; fails after timeout."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(0.2)
    pytest.fail(f"not replicated within {timeout:.0f}s")


@pytest.mark.parametrize("host", sorted(SERVERS))
@pytest.mark.parametrize("mode", ["starttls", "ldaps"])
def test_postfix_account_sees_the_data_mailboxes(host: str, mode: str, entries: list,
                                                  base_dn: str) -> None:
    want = {e.attributes["mail"][0] for e in entries
            if "PostfixBookMailAccount" in e.object_classes
            and e.attributes["mailEnabled"] == ("TRUE",)}
    conn = bound(host, mode, service_dn(base_dn, "postfix"), secret("ldap-postfix"))
    found = conn.extend.standard.paged_search(
        base_dn, "(&(objectClass=PostfixBookMailAccount)(mailEnabled=TRUE))",
        attributes=["mail"], paged_size=500, generator=False)
    have = {str(e["attributes"]["mail"][0]) for e in found if e["type"] == "searchResEntry"}
    assert have == want


@pytest.mark.parametrize("host", sorted(SERVERS))
def test_postfix_filter_resolves_an_alias(host: str, entries: list, base_dn: str) -> None:
    with_alias = next(e for e in entries if len(e.attributes.get("mailAlias", ())) > 1)
    alias = with_alias.attributes["mailAlias"][1]
    conn = bound(host, "starttls", service_dn(base_dn, "postfix"), secret("ldap-postfix"))
    conn.search(base_dn, f"(&(objectClass=PostfixBookMailAccount)(mailAlias={alias})"
                "(mailEnabled=TRUE))", attributes=["mail"])
    assert [str(e.mail) for e in conn.entries] == [with_alias.attributes["mail"][0]]


def test_postfix_reads_routing_attributes_only(entries: list, base_dn: str) -> None:
    person = next(e for e in entries if e.dn.startswith("uid="))
    conn = bound("mail1", "starttls", service_dn(base_dn, "postfix"), secret("ldap-postfix"))
    conn.search(person.dn, "(objectClass=*)", search_scope=ldap3.BASE,
                attributes=["mail", "cn", "userPassword", "mailQuota"])
    (entry,) = conn.response
    assert set(entry["attributes"]) == {"mail"} or not entry["attributes"].get("cn")
    assert not entry["attributes"].get("userPassword")
    assert not entry["attributes"].get("mailQuota")


@pytest.mark.parametrize("host", sorted(SERVERS))
def test_dovecot_reads_userdb_attributes_but_no_password(host: str, entries: list,
                                                         base_dn: str) -> None:
    person = next(e for e in entries if e.dn.startswith("uid="))
    conn = bound(host, "ldaps", service_dn(base_dn, "dovecot"), secret("ldap-dovecot"))
    mail = person.attributes["mail"][0]
    conn.search(base_dn, f"(&(objectClass=PostfixBookMailAccount)(mail={mail}))",
                attributes=["mailHomeDirectory", "mailQuota", "userPassword"])
    (entry,) = [r for r in conn.response if r["type"] == "searchResEntry"]
    attrs = entry["attributes"]
    assert str(attrs["mailHomeDirectory"]) == person.attributes["mailHomeDirectory"][0]
    assert [str(v) for v in attrs["mailQuota"]] == list(person.attributes["mailQuota"])
    assert not attrs.get("userPassword")


def test_anonymous_sees_nothing(base_dn: str) -> None:
    conn = connect("mail1", "starttls")
    conn.search(base_dn, "(objectClass=*)", attributes=["mail"])
    assert conn.entries == []


def test_plain_ldap_refuses_a_password_bind(base_dn: str) -> None:
    conn = connect("mail1", "plain", service_dn(base_dn, "postfix"), secret("ldap-postfix"))
    assert not conn.bind()
    assert conn.result["result"] == 13  # confidentialityRequired


@pytest.mark.parametrize("host", sorted(SERVERS))
def test_test_mailboxes_log_in_over_tls(host: str, base_dn: str) -> None:
    # The base comes from the data: the provider's root DSE also names cn=accesslog.
    passwords = json.loads((SECRETS / "test-mailboxes.json").read_text(encoding="utf-8"))
    assert passwords
    for address, password in passwords.items():
        local = address.split("@")[0]
        user = f"uid={local},ou=people,{base_dn}"
        assert bound(host, "starttls", user, password).extend.standard.who_am_i() == f"dn:{user}"
        wrong = connect(host, "starttls", user, password + "x")
        assert not wrong.bind()


@pytest.mark.parametrize("host", sorted(SERVERS))
def test_memberof_reaches_the_replica(host: str, entries: list, base_dn: str) -> None:
    group = next(e for e in entries if e.dn.startswith("cn=") and e.dn.endswith(
        f"ou=groups,{base_dn}") and e.attributes["member"][0].startswith("uid="))
    member = group.attributes["member"][0]
    conn = bound(host, "starttls", service_dn(base_dn, "dovecot"), secret("ldap-dovecot"))
    conn.search(member, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["memberOf"])
    assert group.dn.lower() in [str(v).lower() for v in conn.entries[0].memberOf.values]


@pytest.fixture()
def temp_person(base_dn: str) -> Iterator[str]:
    local = f"labtest{uuid.uuid4().hex[:8]}"
    dn = f"uid={local},ou=people,{base_dn}"
    yield dn
    subprocess.run(
        ["ssh", "-F", str(SSH_CONFIG), "mail1", "ldapdelete", "-Q", "-Y", "EXTERNAL", "-H",
         "ldapi:///", dn], capture_output=True, timeout=30, check=False)


def _replica_quota(dovecot, dn: str) -> str | None:
    dovecot.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["mailQuota"])
    return str(dovecot.entries[0].mailQuota) if dovecot.entries else None


def test_replica_follows_add_modify_delete(temp_person: str, base_dn: str) -> None:
    local = temp_person.split(",")[0].split("=")[1]
    domain = base_dn.replace("dc=", "").replace(",", ".")
    dovecot = bound("mail2", "starttls", service_dn(base_dn, "dovecot"), secret("ldap-dovecot"))
    assert _replica_quota(dovecot, temp_person) is None

    on_provider(
        f"dn: {temp_person}\nchangetype: add\nobjectClass: inetOrgPerson\n"
        "objectClass: PostfixBookMailAccount\nobjectClass: PostfixBookMailForward\n"
        f"uid: {local}\ncn: Lab Test\nsn: Lab\nmail: {local}@{domain}\n"
        f"mailAlias: {local}@{domain}\nmailEnabled: TRUE\nmailQuota: 1024\n")
    added = wait_for(lambda: _replica_quota(dovecot, temp_person) == "1024")

    on_provider(f"dn: {temp_person}\nchangetype: modify\nreplace: mailQuota\nmailQuota: 2048\n")
    modified = wait_for(lambda: _replica_quota(dovecot, temp_person) == "2048")

    on_provider(f"dn: {temp_person}\nchangetype: delete\n")
    deleted = wait_for(lambda: _replica_quota(dovecot, temp_person) is None)
    print(f"replication: add {added:.2f}s, modify {modified:.2f}s, delete {deleted:.2f}s")


def test_replica_refers_writes_to_the_provider() -> None:
    passwords = json.loads((SECRETS / "test-mailboxes.json").read_text(encoding="utf-8"))
    address, password = next(iter(passwords.items()))
    conn = connect("mail2", "starttls")
    conn.search("", "(objectClass=*)", search_scope=ldap3.BASE, attributes=["namingContexts"])
    user = f"uid={address.split('@')[0]},ou=people,{conn.entries[0].namingContexts}"
    me = bound("mail2", "starttls", user, password)
    me.modify(user, {"userPassword": [(ldap3.MODIFY_REPLACE, [password])]})
    assert me.result["result"] == 10  # referral
    assert any("mail1" in ref for ref in me.result.get("referrals") or [])


def _replica_member_of(dovecot, dn: str) -> list[str]:
    dovecot.search(dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["memberOf"])
    return [str(v).lower() for v in dovecot.entries[0].memberOf.values] if dovecot.entries else []


def test_group_change_updates_memberof_on_the_replica(temp_person: str, base_dn: str,
                                                      entries: list) -> None:
    local = temp_person.split(",")[0].split("=")[1]
    group = next(e.dn for e in entries if e.dn.startswith("cn=") and e.dn.endswith("-all,"
                 f"ou=groups,{base_dn}"))
    dovecot = bound("mail2", "starttls", service_dn(base_dn, "dovecot"), secret("ldap-dovecot"))
    on_provider(
        f"dn: {temp_person}\nchangetype: add\nobjectClass: inetOrgPerson\n"
        f"uid: {local}\ncn: Lab Test\nsn: Lab\n")
    wait_for(lambda: dovecot.search(temp_person, "(objectClass=*)", search_scope=ldap3.BASE)
             and bool(dovecot.entries))
    on_provider(f"dn: {group}\nchangetype: modify\nadd: member\nmember: {temp_person}\n")
    joined = wait_for(lambda: group.lower() in _replica_member_of(dovecot, temp_person))
    on_provider(f"dn: {group}\nchangetype: modify\ndelete: member\nmember: {temp_person}\n")
    left = wait_for(lambda: group.lower() not in _replica_member_of(dovecot, temp_person))
    print(f"memberOf on the replica: join {joined:.2f}s, leave {left:.2f}s")


def _filter_hits(conn, base_dn: str, query: str) -> set[str]:
    conn.search(base_dn, query, attributes=["mail"])
    return {str(e.mail) for e in conn.entries}


@pytest.mark.parametrize("state", ["suspended", "cancelled"])
def test_documented_filters_treat_the_states_right(state: str, entries: list,
                                                   base_dn: str) -> None:
    """The Postfix and Dovecot filters of docs/directory.md, run as their service accounts."""
    gone = purged_addresses()
    locked = [e for e in entries if e.attributes.get("pwdAccountLockedTime")
              and e.attributes["mail"][0] not in gone]
    box = next((e for e in locked if (e.attributes["mailEnabled"] == ("FALSE",))
                == (state == "cancelled")), None)
    if box is None:
        pytest.skip(f"the data file has no {state} mailbox")
    mail = box.attributes["mail"][0]
    postfix = bound("mail2", "starttls", service_dn(base_dn, "postfix"), secret("ldap-postfix"))
    dovecot = bound("mail2", "starttls", service_dn(base_dn, "dovecot"), secret("ldap-dovecot"))
    mailbox_map = f"(&(objectClass=PostfixBookMailAccount)(mail={mail})(mailEnabled=TRUE))"
    reject_map = f"(&(objectClass=PostfixBookMailAccount)(mailAlias={mail})(mailEnabled=FALSE))"
    passdb = (f"(&(objectClass=inetOrgPerson)(mail={mail})(mailEnabled=TRUE)"
              "(!(pwdAccountLockedTime=*)))")
    userdb = f"(&(objectClass=PostfixBookMailAccount)(mail={mail}))"
    receives = state == "suspended"
    assert bool(_filter_hits(postfix, base_dn, mailbox_map)) is receives
    assert bool(_filter_hits(postfix, base_dn, reject_map)) is not receives
    assert _filter_hits(dovecot, base_dn, passdb) == set()  # no login in either state
    assert _filter_hits(dovecot, base_dn, userdb) == {mail}  # data still reachable


def test_a_suspended_mailbox_cannot_bind_even_with_its_password(
        entries: list, passwords: dict[str, str]) -> None:
    # Not the suspended mailbox with a lab test password (its password must stay for
    # test_mailflow): this test removes the one it sets.
    box = next((e for e in entries if e.attributes.get("pwdAccountLockedTime")
                and e.attributes["mailEnabled"] == ("TRUE",)
                and e.attributes["mail"][0].lower() not in passwords), None)
    if box is None:
        pytest.skip("the data file has no suspended mailbox")
    password = f"Lab-{uuid.uuid4().hex[:12]}.A7"
    lock = (f"dn: {box.dn}\nchangetype: modify\nreplace: pwdAccountLockedTime\n"
            f"pwdAccountLockedTime: {box.attributes['pwdAccountLockedTime'][0]}\n")
    ssh = ["ssh", "-F", str(SSH_CONFIG), "mail1"]
    # An administrator's password reset unlocks the entry (ppolicy), so lock it again after.
    subprocess.run([*ssh, "ldappasswd", "-Q", "-Y", "EXTERNAL", "-H", "ldapi:///", "-s",
                    password, box.dn], check=True, capture_output=True, timeout=30)
    try:
        on_provider(lock)
        dovecot = bound("mail2", "starttls", service_dn(base_of(box.dn), "dovecot"),
                        secret("ldap-dovecot"))
        wait_for(lambda: dovecot.search(box.dn, "(pwdAccountLockedTime=*)",
                                        search_scope=ldap3.BASE) and bool(dovecot.entries))
        for host in sorted(SERVERS):
            conn = connect(host, "starttls", box.dn, password)
            assert not conn.bind(), f"{box.dn} could bind on {host} while suspended"
    finally:
        on_provider(f"dn: {box.dn}\nchangetype: modify\ndelete: userPassword\n")
        on_provider(lock)
