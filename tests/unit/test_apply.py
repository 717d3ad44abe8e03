"""mailgov.apply and mailgov.lock against ldap3's in-memory server (MOCK_SYNC): no slapd.

The mock server keeps real entries and answers with real result codes (entryAlreadyExists,
noSuchObject, noSuchAttribute …), so these tests check what apply WRITES, not how it calls.
"""

from __future__ import annotations

from typing import Any

import pytest
from ldap3 import BASE, MOCK_SYNC, SUBTREE, Connection, Server

from mailgov.apply import ApplyResult, apply, modifications
from mailgov.lock import Holder, LockError, ReconcileLock
from mailgov.plan import Change, Plan

BASE_DN = "dc=monre,dc=gov,dc=vn"
PEOPLE = f"ou=people,{BASE_DN}"
GROUPS = f"ou=groups,{BASE_DN}"
MAIL = ("top", "inetOrgPerson", "PostfixBookMailAccount", "PostfixBookMailForward")


@pytest.fixture
def conn() -> Connection:
    server = Server("mock")
    c = Connection(server, user="cn=mailgov,ou=services," + BASE_DN, password="x",
                   client_strategy=MOCK_SYNC)
    c.strategy.add_entry("cn=mailgov,ou=services," + BASE_DN, {"userPassword": "x"})
    c.bind()
    for dn, ou in ((BASE_DN, None), (f"ou=services,{BASE_DN}", "services"),
                   (PEOPLE, "people"), (GROUPS, "groups")):
        attrs: dict[str, Any] = {"objectClass": ["top", "organizationalUnit"]}
        if ou:
            attrs["ou"] = ou
        c.strategy.add_entry(dn, attrs)
    return c


def person(local: str, **extra: tuple[str, ...]) -> Change:
    attrs = {"uid": (local,), "cn": ("Nguyễn Văn " + local,), "sn": ("Nguyễn",),
             "mail": (f"{local}@monre.gov.vn",), "mailAlias": (f"{local}@monre.gov.vn",),
             "mailEnabled": ("TRUE",), **extra}
    return Change("create", f"uid={local},{PEOPLE}", f"{local}@monre.gov.vn", "vpb",
                  object_classes=MAIL, add=attrs, after=attrs)


def read(conn: Connection, dn: str) -> dict[str, list[str]] | None:
    if not conn.search(dn, "(objectClass=*)", BASE, attributes=["*"]):
        return None
    attrs = conn.response[0]["attributes"]
    return {k: sorted(str(x) for x in (v if isinstance(v, list) else [v]))
            for k, v in attrs.items()}


def plan_of(*changes: Change) -> Plan:
    return Plan(changes=tuple(changes), drift=(), refusals=())


def test_create_writes_every_attribute_and_class(conn: Connection) -> None:
    result = apply(conn, plan_of(person("natuan", title=("Chuyên viên",))))
    assert result.ok and result.applied == 1 and result.counts == {"create": 1}
    entry = read(conn, f"uid=natuan,{PEOPLE}")
    assert entry is not None
    assert entry["title"] == ["Chuyên viên"]
    assert entry["cn"] == ["Nguyễn Văn natuan"]
    assert sorted(entry["objectClass"]) == sorted(MAIL)


def test_modify_does_delete_add_replace_exactly(conn: Connection) -> None:
    apply(conn, plan_of(person("natuan", mailForwardingAddress=("a@x.gov.vn", "b@x.gov.vn"))))
    dn = f"uid=natuan,{PEOPLE}"
    change = Change(
        "modify", dn, "natuan@monre.gov.vn", "vpb",
        add={"mailAlias": ("tuan.na@monre.gov.vn",)},
        delete={"mailForwardingAddress": ("a@x.gov.vn",), "sn": ()},
        replace={"mailEnabled": ("FALSE",)},
    )
    result = apply(conn, plan_of(change))
    assert result.ok, result.errors
    entry = read(conn, dn)
    assert entry is not None
    assert entry["mailAlias"] == ["natuan@monre.gov.vn", "tuan.na@monre.gov.vn"]
    assert entry["mailForwardingAddress"] == ["b@x.gov.vn"]
    assert "sn" not in entry  # () deletes the whole attribute
    assert entry["mailEnabled"] == ["FALSE"]


def test_modifications_order_delete_before_add() -> None:
    c = Change("modify", "uid=a," + PEOPLE, "a", None,
               add={"mail": ("new@x",)}, delete={"mail": ("old@x",)})
    ops = modifications(c)["mail"]
    assert [op for op, _ in ops] == ["MODIFY_DELETE", "MODIFY_ADD"]


def test_rename_moves_dn_and_keeps_old_address_as_alias(conn: Connection) -> None:
    apply(conn, plan_of(person("natuan")))
    old, new = f"uid=natuan,{PEOPLE}", f"uid=tuan.na,{PEOPLE}"
    change = Change(
        "rename", new, "tuan.na@monre.gov.vn", "vpb", old_dn=old,
        # The planner may list the uid change too; the modify-DN already did it.
        add={"uid": ("tuan.na",), "mailAlias": ("tuan.na@monre.gov.vn",)},
        delete={"uid": ("natuan",)},
        replace={"mail": ("tuan.na@monre.gov.vn",)},
    )
    result = apply(conn, plan_of(change))
    assert result.ok, result.errors
    assert read(conn, old) is None
    entry = read(conn, new)
    assert entry is not None
    assert entry["uid"] == ["tuan.na"]
    assert entry["mail"] == ["tuan.na@monre.gov.vn"]
    assert entry["mailAlias"] == ["natuan@monre.gov.vn", "tuan.na@monre.gov.vn"]


def test_purge_deletes_the_entry(conn: Connection) -> None:
    apply(conn, plan_of(person("natuan")))
    dn = f"uid=natuan,{PEOPLE}"
    result = apply(conn, plan_of(Change("purge", dn, "natuan@monre.gov.vn", "vpb",
                                        store="/var/vmail/monre.gov.vn/natuan")))
    assert result.ok and result.counts == {"purge": 1}
    assert read(conn, dn) is None


def test_archive_writes_nothing(conn: Connection) -> None:
    apply(conn, plan_of(person("natuan")))
    dn = f"uid=natuan,{PEOPLE}"
    before = read(conn, dn)
    result = apply(conn, plan_of(Change("archive", dn, "natuan@monre.gov.vn", "vpb",
                                        store="/var/vmail/monre.gov.vn/natuan")))
    assert result.ok and result.applied == 1
    assert read(conn, dn) == before


def test_errors_are_collected_per_change_and_the_rest_is_applied(conn: Connection) -> None:
    apply(conn, plan_of(person("natuan")))
    bad = person("natuan")  # exists already
    missing = Change("modify", f"uid=ghost,{PEOPLE}", "ghost@monre.gov.vn", None,
                     replace={"mailEnabled": ("FALSE",)})
    good = person("lthoa")
    result = apply(conn, plan_of(bad, missing, good))
    assert not result.ok
    assert result.applied == 1
    assert [e.dn for e in result.errors] == [bad.dn, missing.dn]
    assert "entryAlreadyExists" in result.errors[0].message
    assert "noSuchObject" in result.errors[1].message
    assert read(conn, good.dn) is not None


def test_rerun_after_partial_failure_converges(conn: Connection) -> None:
    """The next plan holds only what is left: applying it finishes the job."""
    first = [person("a1"), person("a2"), person("a3")]
    apply(conn, plan_of(first[0]))  # as if the connection died after the first
    left = [c for c in first if read(conn, c.dn) is None]
    result = apply(conn, plan_of(*left))
    assert result.ok and result.applied == 2
    assert all(read(conn, c.dn) is not None for c in first)


def test_group_membership_changes(conn: Connection) -> None:
    group = f"cn=vpb-all,{GROUPS}"
    g = Change("create", group, "vpb-all@monre.gov.vn", "vpb",
               object_classes=("top", "groupOfNames"),
               add={"cn": ("vpb-all",), "member": (f"uid=a,{PEOPLE}",)})
    add = Change("add_member", group, "vpb-all@monre.gov.vn", "vpb",
                 add={"member": (f"uid=b,{PEOPLE}",)})
    rm = Change("remove_member", group, "vpb-all@monre.gov.vn", "vpb",
                delete={"member": (f"uid=a,{PEOPLE}",)})
    result = apply(conn, plan_of(g, add, rm))
    assert result.ok, result.errors
    entry = read(conn, group)
    assert entry is not None
    assert [m.lower() for m in entry["member"]] == [f"uid=b,{PEOPLE}".lower()]


def test_refused_plan_is_not_applied(conn: Connection) -> None:
    p = Plan(changes=(person("natuan"),), drift=(), refusals=("cancels 40% of mailboxes",))
    result = apply(conn, p)
    assert not result.ok and result.applied == 0 and result.not_attempted == 1
    assert read(conn, f"uid=natuan,{PEOPLE}") is None


def test_on_change_sees_every_change_with_its_error(conn: Connection) -> None:
    seen: list[tuple[str, str | None]] = []
    apply(conn, plan_of(person("a"), person("a")),
          on_change=lambda c, err: seen.append((c.dn, err)))
    assert seen[0] == (f"uid=a,{PEOPLE}", None)
    assert seen[1][1] is not None and "entryAlreadyExists" in seen[1][1]


def test_as_dict_counts() -> None:
    r = ApplyResult(applied=2, counts={"create": 2})
    d = r.as_dict()
    assert d["applied"] == 2 and d["failed"] == 0 and d["counts"] == {"create": 2}


# --- the lock ----------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


def lock_entry(conn: Connection) -> str | None:
    dn = f"cn=reconcile-lock,ou=services,{BASE_DN}"
    if not conn.search(dn, "(objectClass=*)", BASE, attributes=["description"]):
        return None
    value = conn.response[0]["attributes"]["description"]
    return str(value[0] if isinstance(value, list) else value)


def test_lock_is_exclusive_and_released(conn: Connection) -> None:
    clock = Clock()
    first = ReconcileLock(conn, BASE_DN, owner="ci@runner pid 1", clock=clock,
                          sleep=clock.sleep)
    with first:
        assert first.held
        assert "owner=ci@runner pid 1" in (lock_entry(conn) or "")
        second = ReconcileLock(conn, BASE_DN, owner="admin@laptop pid 2", clock=clock,
                               sleep=clock.sleep)
        with pytest.raises(LockError, match=r"another apply is running \(owner ci@runner"):
            second.acquire()
        assert not second.held
    assert lock_entry(conn) is None
    # Free again: the second one gets it now.
    with ReconcileLock(conn, BASE_DN, owner="admin@laptop pid 2", clock=clock,
                       sleep=clock.sleep) as again:
        assert again.held


def test_lock_waits_up_to_wait_seconds(conn: Connection) -> None:
    clock = Clock()
    holder = ReconcileLock(conn, BASE_DN, owner="one", clock=clock, sleep=clock.sleep)
    holder.acquire()
    waiter = ReconcileLock(conn, BASE_DN, owner="two", wait=30, poll=5, clock=clock,
                           sleep=clock.sleep)
    start = clock.t
    with pytest.raises(LockError, match="another apply is running"):
        waiter.acquire()
    assert clock.t - start >= 30  # it did wait, then gave up


def test_stale_lock_is_taken_over_once(conn: Connection) -> None:
    clock = Clock()
    dead = ReconcileLock(conn, BASE_DN, owner="dead", ttl=60, clock=clock, sleep=clock.sleep)
    dead.acquire()  # never released
    clock.t += 61
    taker = ReconcileLock(conn, BASE_DN, owner="taker", ttl=60, clock=clock,
                          sleep=clock.sleep)
    taker.acquire()
    assert "owner=taker" in (lock_entry(conn) or "")
    # The dead holder coming back must not delete the taker's lock.
    dead.release()
    assert "owner=taker" in (lock_entry(conn) or "")
    # Nor refresh it as if it were still its own.
    dead._value = "owner=dead;since=x;expires=y;token=z"
    with pytest.raises(LockError, match="lost the reconcile lock"):
        dead.refresh()
    taker.release()
    assert lock_entry(conn) is None


def test_refresh_pushes_expiry(conn: Connection) -> None:
    clock = Clock()
    lock = ReconcileLock(conn, BASE_DN, owner="one", ttl=60, clock=clock, sleep=clock.sleep)
    lock.acquire()
    before = Holder.parse(lock_entry(conn) or "")
    clock.t += 50
    lock.refresh()
    after = Holder.parse(lock_entry(conn) or "")
    assert after.expires.timestamp() - before.expires.timestamp() == 50
    assert after.since == before.since
    lock.release()


def test_holder_parse_garbage_is_expired() -> None:
    h = Holder.parse("nonsense")
    assert h.expires.timestamp() == 0


def test_mock_search_sanity(conn: Connection) -> None:
    # Guard against a mock that finds nothing (every test above would then be vacuous).
    assert conn.search(BASE_DN, "(objectClass=organizationalUnit)", SUBTREE, attributes=["ou"])
    assert len(conn.response) >= 3


def test_lock_of_a_dead_process_on_this_machine_is_taken_over(conn: Connection) -> None:
    """An apply whose connection died cannot delete its lock; its process ends with it."""
    import socket
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    clock = Clock()
    dead = ReconcileLock(conn, BASE_DN, owner=f"root@{socket.gethostname()} pid "
                         f"{gone.stdout.strip()}", clock=clock, sleep=clock.sleep)
    dead.acquire()
    alive = ReconcileLock(conn, BASE_DN, owner=f"root@{socket.gethostname()} pid 1",
                          clock=clock, sleep=clock.sleep)
    alive.acquire()  # not expired, but its holder is gone
    assert "pid 1;" in (lock_entry(conn) or "")
    # pid 1 is alive: a third one must not take it over.
    with pytest.raises(LockError, match="another apply is running"):
        ReconcileLock(conn, BASE_DN, owner="x", clock=clock, sleep=clock.sleep).acquire()


# --- the reconcile (mailgov/reconcile.py) and the modules' result mapping ---------------


def _module_utils() -> Any:
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "module_utils" / "mailgov_reconcile.py"
    spec = importlib.util.spec_from_file_location("mailgov_reconcile", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_scopes_split_people_from_the_rest() -> None:
    from mailgov.reconcile import in_scope

    person_c = person("natuan")
    renamed = Change("rename", f"uid=new,{PEOPLE}", "new", None, old_dn=f"uid=old,{PEOPLE}")
    group = Change("add_member", f"cn=vpb-all,{GROUPS}", "vpb-all", "vpb")
    container = Change("create", PEOPLE, "people", None)
    assert in_scope(person_c, "mailboxes", BASE_DN)
    assert in_scope(renamed, "mailboxes", BASE_DN)
    assert in_scope(container, "mailboxes", BASE_DN)
    assert not in_scope(group, "mailboxes", BASE_DN)
    assert in_scope(group, "units", BASE_DN)
    assert not in_scope(person_c, "units", BASE_DN)
    assert all(in_scope(c, "all", BASE_DN) for c in (person_c, group, container))


def test_diff_lists_before_and_after() -> None:
    mu = _module_utils()
    c = Change("modify", f"uid=a,{PEOPLE}", "a", None, replace={"mailQuota": ("2",)},
               before={"mailQuota": ("1",)}, after={"mailQuota": ("2",)})
    (d,) = mu.diff_of([c])
    assert d["before"] == "mailQuota: 1\n" and d["after"] == "mailQuota: 2\n"
    assert d["after_header"] == c.dn


def test_lab_test_passwords_are_kept_and_private(tmp_path: Any) -> None:
    import json
    import os

    from lab.test_passwords import kept_passwords

    path = tmp_path / "secrets" / "test-mailboxes.json"
    first = kept_passwords(path, ["a@x.vn", "b@x.vn"])
    assert len(set(first.values())) == 2 and all(len(v) >= 16 for v in first.values())
    assert os.stat(path).st_mode & 0o777 == 0o600
    again = kept_passwords(path, ["a@x.vn", "c@x.vn"])
    assert again["a@x.vn"] == first["a@x.vn"]  # kept, not regenerated
    assert again["c@x.vn"] not in first.values()
    assert json.loads(path.read_text()) == again  # b, no longer wanted, is gone from the file
