"""mailgov.reconcile: the order validate → connect → plan → lock → plan again → apply, and
what each way of stopping reports. The server is ldap3's in-memory mock (the lock is real
ldap3 calls on it); the live read and the apply are recorded stand-ins, since their own
tests are tests/unit/test_live.py and test_apply.py and the real server's is tests/lab.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ldap3 import MOCK_SYNC, Connection, Server

from mailgov import reconcile as rec
from mailgov.apply import ApplyResult
from mailgov.live import LiveError
from mailgov.lock import LOCK_RDN

DATA = Path(__file__).resolve().parents[1] / "data" / "good" / "minimal.yaml"
BAD = Path(__file__).resolve().parents[1] / "data" / "bad" / "mg101_mailbox_without_name.yaml"
BASE_DN = "dc=monre,dc=gov,dc=vn"
LOCK_DN = f"{LOCK_RDN},ou=services,{BASE_DN}"


class World:
    """The mock server, and what the reconcile did to it."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.server = Server("mock")  # the mock's entries are the server's: shared
        self.conn = self._new()
        self.conn.strategy.add_entry(f"cn=mailgov,ou=services,{BASE_DN}", {"userPassword": "x"})
        self.conn.bind()
        self.reads: list[bool] = []  # per live read: was the lock held then
        self.applied: list[Any] = []
        self.live: list[dict[str, Any]] = [{}]  # successive reads (the last one repeats)
        self.connect_error: str | None = None
        monkeypatch.setattr("mailgov.live.connect", self._connect)
        monkeypatch.setattr("mailgov.live.read_live", self._read)
        monkeypatch.setattr("mailgov.apply.apply", self._apply)

    def _new(self) -> Connection:
        return Connection(self.server, user=f"cn=mailgov,ou=services,{BASE_DN}",
                          password="x", client_strategy=MOCK_SYNC)

    def _connect(self, *args: Any, **kw: Any) -> Connection:
        if self.connect_error:
            raise LiveError(self.connect_error)
        conn = self._new()
        conn.bind()
        return conn

    def lock_held(self) -> bool:
        return bool(self.conn.search(LOCK_DN, "(objectClass=*)", "BASE"))

    def _read(self, conn: Connection, base_dn: str) -> dict[str, Any]:
        self.reads.append(self.lock_held())
        return self.live[min(len(self.reads), len(self.live)) - 1]

    def _apply(self, conn: Connection, plan: Any, *, on_change: Any = None) -> ApplyResult:
        assert self.lock_held(), "apply must run under the lock"
        self.applied.append(plan)
        return ApplyResult(applied=len(plan.changes))


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    return World(monkeypatch)


def settings(**kw: Any) -> rec.Settings:
    return rec.Settings(**{"data": str(DATA), "uri": "ldap://mock", "password": "x",
                           "ca_file": "/dev/null", **kw})


def test_dry_run_plans_and_writes_nothing(world: World) -> None:
    out = rec.reconcile(settings())
    assert out.status == rec.PENDING and out.exit_code == 4 and out.changed
    assert world.reads == [False] and not world.applied and not world.lock_held()
    assert out.report()["changes_total"] == len(out.writes) > 0


def test_confirm_plans_again_under_the_lock_and_applies_that_plan(world: World) -> None:
    out = rec.reconcile(settings(), confirm=True)
    assert out.status == rec.APPLIED and out.exit_code == 0 and out.changed
    assert world.reads == [False, True]  # the second read is made holding the lock
    (sent,) = world.applied
    assert list(sent.changes) == out.writes
    assert not world.lock_held()  # released
    assert not out.replanned


def test_a_change_between_the_reads_is_reported_as_replanned(world: World) -> None:
    first = rec.reconcile(settings())
    # Someone wrote one of the planned entries meanwhile: the plan under the lock is shorter.
    done = first.writes[0]
    entry = dict(done.after or {}) | {"objectClass": done.object_classes}
    world.live = [{}, {done.dn.lower(): entry}]
    world.reads.clear()
    out = rec.reconcile(settings(), confirm=True)
    assert out.status == rec.APPLIED and out.replanned
    assert len(world.applied[0].changes) < len(first.writes)


def test_held_lock_stops_before_any_write(world: World) -> None:
    world.conn.strategy.add_entry(LOCK_DN, {
        "objectClass": ["top", "applicationProcess"], "cn": "reconcile-lock",
        "description": "owner=other@elsewhere:1;since=2026-12-03T10:00:00Z;"
                       "expires=2999-01-01T00:00:00Z;token=abc"})
    out = rec.reconcile(settings(), confirm=True)
    assert out.status == rec.LOCKED and out.exit_code == 5 and not out.changed
    assert "another apply is running" in out.message and "other@elsewhere" in out.message
    assert not world.applied


def test_bad_data_stops_before_connecting(world: World) -> None:
    world.connect_error = "must not connect"
    out = rec.reconcile(settings(data=str(BAD)), confirm=True)
    assert out.status == rec.PROBLEMS and out.exit_code == 1
    assert out.problems and "MG101" in out.problems[0]
    assert world.reads == []


def test_unreachable_server_changes_nothing(world: World) -> None:
    world.connect_error = "ldap://mock: connection refused"
    out = rec.reconcile(settings(), confirm=True)
    assert out.status == rec.UNREACHABLE and out.exit_code == 2
    assert "connection refused" in out.message and "nothing was changed" in out.message


def test_refused_plan_is_never_applied(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from mailgov.plan import Plan

    monkeypatch.setattr("mailgov.plan.plan", lambda *a, **k: Plan((), (), ("too many",)))
    out = rec.reconcile(settings(), confirm=True)
    assert out.status == rec.REFUSED and out.exit_code == 3 and "too many" in out.message
    assert not world.applied and not world.lock_held()


def test_failed_changes_are_incomplete(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from mailgov.apply import ApplyError

    def failing(conn: Connection, plan: Any, *, on_change: Any = None) -> ApplyResult:
        c = plan.changes[0]
        return ApplyResult(applied=len(plan.changes) - 1,
                           errors=[ApplyError(c.kind, c.dn, c.subject, "insufficientAccess")])

    monkeypatch.setattr("mailgov.apply.apply", failing)
    out = rec.reconcile(settings(), confirm=True)
    assert out.status == rec.INCOMPLETE and out.exit_code == 6
    assert "insufficientAccess" in out.message and "Re-run" in out.message
    assert not world.lock_held()


def test_scope_keeps_people_apart(world: World) -> None:
    people = rec.reconcile(settings(scope="mailboxes"))
    rest = rec.reconcile(settings(scope="units"))
    everything = rec.reconcile(settings())
    assert all(",ou=people," in c.dn.lower() or c.dn.lower().startswith("ou=people,")
               for c in people.writes)
    assert len(people.writes) + len(rest.writes) == len(everything.writes)


def test_kinds_apply_only_those_changes(world: World) -> None:
    everything = rec.reconcile(settings())
    creates = [c for c in everything.writes if c.kind == "create"]
    assert creates
    assert rec.reconcile(settings(kinds=("create",))).writes == creates
    only = rec.reconcile(settings(kinds=("modify",)), confirm=True)
    assert only.status == rec.NOTHING and not world.applied  # nothing of that kind
    bad = rec.reconcile(settings(kinds=("explode",)))
    assert bad.status == rec.PROBLEMS and "explode" in bad.message
