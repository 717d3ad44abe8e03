"""mailgov.plan: desired × live → ordered changes. Table-driven, no server (peribolos style).

Each case names the live directory (`have`: the entries some data gives, optionally edited
the way a server or an admin would have them) and the data (`want`), and lists the expected
changes as (kind, subject) in apply order.
"""

from __future__ import annotations

import copy
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pytest

from mailgov.archive import retention_end
from mailgov.directory import ADMIN_LOCK, DISABLED_AT, RETAIN_UNTIL, desired_entries
from mailgov.model import Directory, build
from mailgov.plan import CHANGE_KINDS, Change, Guards, Plan, normalise_dn, plan
from tools.generate import POLICY

BASE = "dc=monre,dc=gov,dc=vn"
TODAY = date(2026, 11, 29)
D = "@monre.gov.vn"
NATUAN2_STORE = "/var/vmail/by-id/3"  # natuan2 (id 3): archives are keyed by the store

Data = dict[str, Any]
Live = dict[str, dict[str, Any]]


def _base() -> Data:
    fillers = [{"address": f"nv{i}", "id": 100 + i, "name": "Nguyễn Văn An", "unit": "vp"}
               for i in range(40)]
    return {
        "version": 1,
        "organization": {"name": "Bộ Tài nguyên và Môi trường", "domain": "monre.gov.vn",
                         "base_dn": BASE, "it_unit": "cntt"},
        "policy": {**copy.deepcopy(POLICY), "protected": ["postmaster", "abuse"]},
        "units": [
            {"id": "vpb", "name": "Văn phòng Bộ", "head": "natuan",
             "mailbox": {"quota_mb": 20480, "delegates": ["natuan", "ttlan"]}},
            {"id": "tcmt", "name": "Tổng cục Môi trường"},
            {"id": "vp", "name": "Văn phòng Tổng cục", "parent": "tcmt"},
            {"id": "cntt", "name": "Cục Công nghệ thông tin"},
        ],
        "mailboxes": [
            {"address": "natuan", "id": 1, "name": "Nguyễn Anh Tuấn", "unit": "vpb", "role": "head",
             "aliases": ["tuan.na"], "forward_to": ["tuan@mard.gov.vn"]},
            {"address": "ttlan", "id": 2, "name": "Trần Thị Lan", "unit": "vpb",
             "title": "Chuyên viên"},
            {"address": "natuan2", "id": 3, "name": "Nguyễn Anh Tuấn", "unit": "tcmt",
             "request": "5/QĐ-TCMT"},
            {"address": "ptminh", "id": 4, "name": "Phạm Thị Minh", "unit": "cntt", "role": "admin",
             "aliases": ["postmaster", "abuse"]},
            *fillers,
        ],
    }


def _box(data: Data, address: str) -> dict[str, Any]:
    return next(m for m in data["mailboxes"] if m["address"] == address)


def live_of(data: Data) -> Live:
    """What a directory loaded from `data` holds (what mailgov.live would read): a cancelled
    mailbox's entry carries when its cancel was applied (taken as cancelled.date here) and
    the end of the retention in force then."""
    d = build(data)
    live = {normalise_dn(e.dn): {**e.attributes, "objectClass": e.object_classes}
            for e in desired_entries(d)}
    for m in d.mailboxes:
        if m.state == "cancelled" and m.cancelled is not None:
            day = date.fromisoformat(m.cancelled.date)
            end = retention_end(m, d.policy)
            assert end is not None
            live[person(m.address)].update({DISABLED_AT: (f"{day:%Y%m%d}000000Z",),
                                            RETAIN_UNTIL: (f"{end:%Y%m%d}000000Z",)})
    return live


def person(local: str) -> str:
    return normalise_dn(f"uid={local},ou=people,{BASE}")


def group(name: str) -> str:
    return normalise_dn(f"cn={name},ou=groups,{BASE}")


# --- edits: small functions so each case reads as a sentence ------------------------------

Edit = Callable[[Data], None]


def set_(address: str, **fields: Any) -> Edit:
    def edit(data: Data) -> None:
        _box(data, address).update(fields)
    return edit


def cancel(address: str, when: str = "2026-11-01", **extra: Any) -> Edit:
    return set_(address, state="cancelled", **extra,
                cancelled={"date": when, "reason": "retired", "request": "77/QĐ-TCCB"})


def suspend(address: str) -> Edit:
    return set_(address, state="suspended",
                suspended={"date": "2026-11-01", "reason": "Nghỉ phép", "request": "9/QĐ-VPB"})


def add_box(**fields: Any) -> Edit:
    def edit(data: Data) -> None:  # a new record gets the next free id, as validation asks
        data["mailboxes"].append(
            {"id": max(m["id"] for m in data["mailboxes"]) + 1, **fields})
    return edit


def unset(address: str, key: str) -> Edit:
    def edit(data: Data) -> None:
        _box(data, address).pop(key, None)
    return edit


def edit_unit(uid: str, **fields: Any) -> Edit:
    def edit(data: Data) -> None:
        next(u for u in data["units"] if u["id"] == uid).update(fields)
    return edit


def rename(old: str, new: str) -> Edit:
    def edit(data: Data) -> None:
        _box(data, old).update(address=new, renamed_from=old)
        for u in data["units"]:
            box = u.get("mailbox") or {}
            box["delegates"] = [new if x == old else x for x in box.get("delegates", [])]
    return edit


LiveEdit = Callable[[Live], None]


def live_set(dn: str, **attrs: Any) -> LiveEdit:
    def edit(live: Live) -> None:
        live[dn] = {**live[dn], **attrs}
    return edit


def live_drop(dn: str, attr: str | None = None) -> LiveEdit:
    def edit(live: Live) -> None:
        if attr is None:
            del live[dn]
        else:
            live[dn] = {k: v for k, v in live[dn].items() if k != attr}
    return edit


def live_add(dn: str, **attrs: Any) -> LiveEdit:
    def edit(live: Live) -> None:
        live[normalise_dn(dn)] = attrs
    return edit


def shout(live: Live) -> None:
    """A server's spelling: DNs with upper case and spaces, values in another order."""
    out: Live = {}
    for dn, attrs in live.items():
        new = {k: tuple(reversed(v)) for k, v in attrs.items()}
        if "mail" in new:
            new["mail"] = tuple(v.upper() for v in new["mail"])
        if "member" in new:
            new["member"] = tuple(v.upper().replace(",", ", ") for v in new["member"])
        if "cn" in new and dn.startswith("uid="):
            new["cn"] = tuple(unicodedata.normalize("NFD", v) for v in new["cn"])
        out[dn.upper().replace(",", " , ")] = new
    live.clear()
    live.update(out)


@dataclass
class Case:
    name: str
    want: list[Edit] = field(default_factory=list)  # edits of the data
    have: list[Edit] = field(default_factory=list)  # edits of the data the live side came from
    live: list[LiveEdit] = field(default_factory=list)  # then edits of the live entries
    expected: list[tuple[str, str]] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # words each refusal must contain
    kw: dict[str, Any] = field(default_factory=dict)


def run(case: Case) -> Plan:
    have, want = _base(), _base()
    for edit in case.have:
        edit(have)
    for edit in case.want:
        edit(want)
    live = live_of(have)
    for ledit in case.live:
        ledit(live)
    return plan(build(want), live, today=TODAY, **case.kw)


CASES = [
    Case("no-op: live = desired gives an empty plan"),
    Case("normalisation: case, spaces, value order, NFD names are not changes", live=[shout]),
    Case("unmanaged attributes (password, memberOf, ppolicy) are left alone",
         live=[live_set(person("natuan"), userPassword=("{SSHA}x",), memberOf=("cn=x",),
                        pwdChangedTime=("20260101000000Z",), pwdReset=("TRUE",))]),
    Case("a lockout by ppolicy (a real time) on an active mailbox is ppolicy's business",
         live=[live_set(person("natuan"), pwdAccountLockedTime=("20261128101010Z",))]),
    Case("a title the data does not give is left alone",
         want=[unset("ttlan", "title")]),
    Case("create a mailbox and add it to its unit's list",
         want=[add_box(address="nvbinh", name="Nguyễn Văn Bình", unit="vpb")],
         expected=[("create", f"nvbinh{D}"), ("add_member", f"vpb-all{D}")]),
    Case("fresh directory: containers, units, people, groups",
         live=[lambda live: live.clear()],
         expected=[("create", x) for x in (
             "units", "people", "groups", f"vpb{D}", f"tcmt{D}", f"vp.tcmt{D}", f"cntt{D}",
             f"natuan{D}", f"ttlan{D}", f"natuan2{D}", f"ptminh{D}",
             *(f"nv{i}{D}" for i in range(40)),
             f"vp.tcmt-all{D}", f"cntt-all{D}", f"tcmt-all{D}", f"vpb-all{D}",
             "vpb-delegates")]),
    Case("modify the quota", want=[set_("ttlan", quota_mb=4096)],
         expected=[("modify", f"ttlan{D}")]),
    Case("add an alias", want=[set_("ttlan", aliases=["lan.tt"])],
         expected=[("modify", f"ttlan{D}")]),
    Case("drop a forward", want=[unset("natuan", "forward_to")],
         expected=[("modify", f"natuan{D}")]),
    Case("a name's case is a real change", want=[set_("ttlan", name="Trần thị Lan")],
         expected=[("modify", f"ttlan{D}")]),
    Case("missing auxiliary object class is added",
         live=[live_set(person("ttlan"), objectClass=("top", "inetOrgPerson"))],
         expected=[("modify", f"ttlan{D}")]),
    Case("role admin gets the administrators' password policy; staff loses it",
         want=[set_("ttlan", role="admin"), set_("ptminh", role="staff")],
         expected=[("modify", f"ttlan{D}"), ("modify", f"ptminh{D}")]),
    Case("suspend: locked, still a list member", want=[suspend("natuan2")],
         expected=[("suspend", f"natuan2{D}")]),
    Case("cancel: disabled, locked, leaves its list", want=[cancel("natuan2")],
         expected=[("cancel", f"natuan2{D}"), ("remove_member", f"tcmt-all{D}")]),
    Case("restore a suspended mailbox", have=[suspend("natuan2")],
         expected=[("restore", f"natuan2{D}")]),
    Case("restore a cancelled mailbox: enabled, unlocked, back in its list",
         have=[cancel("natuan2")],
         expected=[("restore", f"natuan2{D}"), ("add_member", f"tcmt-all{D}")]),
    Case("cancelled -> suspended is a restore (mail delivered again)",
         have=[cancel("natuan2")], want=[suspend("natuan2")],
         expected=[("restore", f"natuan2{D}"), ("add_member", f"tcmt-all{D}")]),
    Case("suspended -> cancelled is a cancel", have=[suspend("natuan2")],
         want=[cancel("natuan2")],
         expected=[("cancel", f"natuan2{D}"), ("remove_member", f"tcmt-all{D}")]),
    Case("rename: modrdn, then attributes; refint moves list members to the new DN",
         want=[rename("ttlan", "tranlan")],
         expected=[("rename", f"tranlan{D}"), ("modify", f"tranlan{D}")]),
    Case("rename without refint (old DN still a member): the next plan fixes the lists",
         have=[rename("ttlan", "tranlan")], want=[rename("ttlan", "tranlan")],
         live=[lambda live: live[group("vpb-all")].update(member=tuple(
             person("ttlan") if v.lower() == person("tranlan") else v
             for v in live[group("vpb-all")]["member"]))],
         expected=[("add_member", f"vpb-all{D}"), ("remove_member", f"vpb-all{D}")]),
    Case("rename already applied: nothing to do", have=[rename("ttlan", "tranlan")],
         want=[rename("ttlan", "tranlan")]),
    Case("move between units: ou changes, membership follows",
         want=[set_("natuan2", unit="vp")],
         expected=[("move", f"natuan2{D}"), ("add_member", f"vp.tcmt-all{D}"),
                   ("remove_member", f"tcmt-all{D}")]),
    Case("unit quota", want=[edit_unit("tcmt", mailbox={"quota_mb": 20480})],
         expected=[("modify", f"tcmt{D}")]),
    Case("sub-unit moved under another parent: new address, new list; the old list is drift",
         want=[edit_unit("vp", parent="vpb")],
         expected=[("move", f"vp.vpb{D}"), ("create", f"vp.vpb-all{D}"),
                   ("add_member", f"vpb-all{D}"), ("remove_member", f"tcmt-all{D}")],
         drift=[f"vp.tcmt-all{D}"]),
    Case("retention over, live still there: archive the store",
         have=[cancel("natuan2", "2025-01-01")], want=[cancel("natuan2", "2025-01-01")],
         expected=[("archive", f"natuan2{D}")]),
    Case("retention over and archived: purge",
         have=[cancel("natuan2", "2025-01-01")], want=[cancel("natuan2", "2025-01-01")],
         kw={"archived": {NATUAN2_STORE: "ab" * 32}},
         expected=[("purge", f"natuan2{D}")]),
    Case("retention over and purged (absent): nothing, never recreated",
         have=[cancel("natuan2", "2025-01-01")], want=[cancel("natuan2", "2025-01-01")],
         live=[live_drop(person("natuan2"))]),
    Case("heads keep longer: 200 days after cancellation a head is not archived",
         have=[cancel("natuan", "2026-05-13")], want=[cancel("natuan", "2026-05-13")]),
    Case("... while staff are",
         have=[cancel("natuan2", "2026-05-13")], want=[cancel("natuan2", "2026-05-13")],
         expected=[("archive", f"natuan2{D}")]),
    Case("cancelled long ago in the data but live still active: cancel now, no archive (the "
         "retention counts from the day the directory is disabled)",
         want=[cancel("natuan2", "2025-01-01")],
         expected=[("cancel", f"natuan2{D}"), ("remove_member", f"tcmt-all{D}")]),
    Case("... even with an archive of the address on record: never a purge without a cancel",
         want=[cancel("natuan2", "2025-01-01")], kw={"archived": {NATUAN2_STORE: "ab" * 32}},
         expected=[("cancel", f"natuan2{D}"), ("remove_member", f"tcmt-all{D}")]),
    Case("a backdated cancelled.date does not shorten the retention recorded live",
         have=[cancel("natuan2", "2026-11-01")], want=[cancel("natuan2", "2024-01-01")]),
    Case("a cancelled head made staff (365 -> 180 days) keeps the head's retention",
         have=[cancel("natuan", "2026-05-13")],
         want=[cancel("natuan", "2026-05-13"), set_("natuan", role="staff")],
         expected=[("modify", f"natuan{D}")]),
    Case("a shorter policy.retention does not shorten a retention already running",
         have=[cancel("natuan2", "2026-11-01")],
         want=[cancel("natuan2", "2026-11-01"), lambda data: data["policy"]["retention"].update(
             staff_days=1, heads_days=1)]),
    Case("a longer retention in the data counts: 200 days after the cancel, staff wait "
         "while the policy says 365",
         have=[cancel("natuan2", "2026-05-13")],
         want=[cancel("natuan2", "2026-05-13"), lambda data: data["policy"]["retention"].update(
             staff_days=365)]),
    Case("cancelled inside retention but absent: created cancelled (the bounce needs it)",
         want=[cancel("natuan2")], live=[live_drop(person("natuan2"))],
         expected=[("create", f"natuan2{D}"), ("remove_member", f"tcmt-all{D}")]),
    Case("drift: an entry the data does not explain is reported, not removed",
         live=[live_add(f"uid=ghost,ou=people,{BASE}", mail=(f"ghost{D}",), ou=("vpb",))],
         drift=[f"ghost{D}"]),
    Case("drift removed when asked",
         live=[live_add(f"uid=ghost,ou=people,{BASE}", mail=(f"ghost{D}",), ou=("vpb",))],
         kw={"remove_drift": True}, expected=[("drift", f"ghost{D}")], drift=[f"ghost{D}"]),
    Case("drift removed when the base of the review and the file say so (remove_drift)",
         want=[lambda data: data["policy"]["safety"].update(remove_drift=True)],
         live=[live_add(f"uid=ghost,ou=people,{BASE}", mail=(f"ghost{D}",), ou=("vpb",))],
         kw={"guards": Guards(remove_drift=True, source="the inventory")},
         expected=[("drift", f"ghost{D}")], drift=[f"ghost{D}"]),
    Case("remove_drift in the file under review alone removes nothing (guards from outside)",
         want=[lambda data: data["policy"]["safety"].update(remove_drift=True)],
         live=[live_add(f"uid=ghost,ou=people,{BASE}", mail=(f"ghost{D}",), ou=("vpb",))],
         drift=[f"ghost{D}"]),
    Case("entries outside the managed containers are not ours",
         live=[live_add(f"cn=postfix,ou=services,{BASE}", cn=("postfix",))]),
    Case("protected account: cancelling the holder of postmaster is refused",
         want=[cancel("ptminh")],
         # the list falls back to the unit mailbox (a groupOfNames needs a member)
         expected=[("cancel", f"ptminh{D}"), ("add_member", f"cntt-all{D}"),
                   ("remove_member", f"cntt-all{D}")],
         refused=["protected", "postmaster"]),
    Case("protected account: removing it as drift is refused",
         live=[live_add(f"uid=pm,ou=people,{BASE}", mail=(f"pm{D}",),
                        mailAlias=(f"abuse{D}",))],
         kw={"remove_drift": True}, expected=[("drift", f"pm{D}")], drift=[f"pm{D}"],
         refused=["protected", "abuse"]),
    Case("mass change: cancelling 3 of 44 (> 5%) is refused",
         want=[cancel(f"nv{i}") for i in range(11)],
         expected=[*((("cancel", f"nv{i}{D}")) for i in range(11)),
                   ("remove_member", f"vp.tcmt-all{D}")],
         refused=["mass change", "11 of 44"]),
    Case("mass change allowed with allow_mass_change",
         want=[cancel(f"nv{i}") for i in range(11)], kw={"allow_mass_change": True},
         expected=[*((("cancel", f"nv{i}{D}")) for i in range(11)),
                   ("remove_member", f"vp.tcmt-all{D}")]),
    Case("ten cancels of 44 (22.7%) pass the 5% rail: not above its floor (10)",
         want=[cancel(f"nv{i}") for i in range(10)],
         expected=[*((("cancel", f"nv{i}{D}")) for i in range(10)),
                   ("remove_member", f"vp.tcmt-all{D}")]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_plan(case: Case) -> None:
    p = run(case)
    assert [(c.kind, c.subject) for c in p.changes] == case.expected
    assert [c.subject for c in p.drift] == case.drift
    if case.refused:
        assert not p.ok
        assert any(all(w in r for w in case.refused) for r in p.refusals), p.refusals
    else:
        assert p.ok, p.refusals


# --- the operations themselves ---------------------------------------------------------------


def only(p: Plan, kind: str, subject: str) -> Change:
    found = [c for c in p.changes if c.kind == kind and c.subject == subject]
    assert len(found) == 1, [(c.kind, c.subject) for c in p.changes]
    return found[0]


def test_quota_is_a_replace() -> None:
    c = only(run(Case("", want=[set_("ttlan", quota_mb=4096)])), "modify", f"ttlan{D}")
    assert c.replace == {"mailQuota": (str(4096 * 1024),)}
    assert not c.add and not c.delete
    assert c.before == {"mailQuota": (str(2048 * 1024),)}


def test_alias_changes_add_and_delete_values_only() -> None:
    c = only(run(Case("", have=[set_("natuan", aliases=["tuan.na", "old"])],
                      want=[set_("natuan", aliases=["tuan.na", "new"])])),
             "modify", f"natuan{D}")
    # old@ stays on the entry as a former address (reserved: never given to another).
    assert c.add == {"mailAlias": (f"new{D}",), "mailgovFormerAddress": (f"old{D}",),
                     "objectClass": ("mailgovLifecycle",)}
    assert c.delete == {"mailAlias": (f"old{D}",)}
    assert "mailAlias" not in c.replace


def test_admin_policy_subentry() -> None:
    p = run(Case("", want=[set_("ttlan", role="admin"), set_("ptminh", role="staff")]))
    assert only(p, "modify", f"ttlan{D}").replace["pwdPolicySubentry"] == (
        f"cn=administrators,ou=policies,{BASE}",)
    assert only(p, "modify", f"ptminh{D}").delete["pwdPolicySubentry"] == ()


def test_dropped_forward_deletes_the_attribute() -> None:
    c = only(run(Case("", want=[unset("natuan", "forward_to")])), "modify", f"natuan{D}")
    assert c.delete == {"mailForwardingAddress": ()}


def test_suspend_writes_the_admin_lock_and_keeps_mail() -> None:
    c = only(run(Case("", want=[suspend("natuan2")])), "suspend", f"natuan2{D}")
    assert c.replace == {"pwdAccountLockedTime": (ADMIN_LOCK,)}
    assert "mailEnabled" not in c.replace
    assert c.reason.startswith("Nghỉ phép, 9/QĐ-VPB")


def test_cancel_disables_and_locks() -> None:
    c = only(run(Case("", want=[cancel("natuan2")])), "cancel", f"natuan2{D}")
    # The day the cancel is applied (TODAY, not cancelled.date 2026-11-01) and the end of
    # the 180-day staff retention from then (2026-11-29 + 180 days = 2027-05-28).
    assert c.replace == {"mailEnabled": ("FALSE",), "pwdAccountLockedTime": (ADMIN_LOCK,),
                         "mailgovDisabledTime": ("20261129000000Z",),
                         "mailgovRetainUntil": ("20270528000000Z",)}
    assert c.add == {"objectClass": ("mailgovLifecycle",)}
    assert c.before is not None and c.before["pwdAccountLockedTime"] == ()


def test_cancel_overwrites_a_ppolicy_lockout_time() -> None:
    p = run(Case("", want=[suspend("natuan2")],
                 live=[live_set(person("natuan2"), pwdAccountLockedTime=("20261128101010Z",))]))
    c = only(p, "suspend", f"natuan2{D}")
    assert c.replace == {"pwdAccountLockedTime": (ADMIN_LOCK,)}


def test_created_cancelled_records_when_its_retention_starts() -> None:
    p = run(Case("", want=[cancel("natuan2")], live=[live_drop(person("natuan2"))]))
    c = only(p, "create", f"natuan2{D}")
    assert c.add["mailgovDisabledTime"] == ("20261129000000Z",)
    assert c.add["mailgovRetainUntil"] == ("20270528000000Z",)
    assert "mailgovLifecycle" in c.object_classes


def test_restore_removes_the_lock() -> None:
    c = only(run(Case("", have=[cancel("natuan2")])), "restore", f"natuan2{D}")
    assert c.delete == {"pwdAccountLockedTime": (), "mailgovDisabledTime": (),
                        "mailgovRetainUntil": ()}
    assert c.replace == {"mailEnabled": ("TRUE",)}
    assert c.reason == "5/QĐ-TCMT"


def test_rename_is_a_modrdn_then_attributes_with_the_old_address_as_alias() -> None:
    p = run(Case("", want=[rename("ttlan", "tranlan")]))
    r = only(p, "rename", f"tranlan{D}")
    assert normalise_dn(r.old_dn or "") == person("ttlan")
    assert normalise_dn(r.dn) == person("tranlan")
    m = only(p, "modify", f"tranlan{D}")
    assert normalise_dn(m.dn) == person("tranlan")
    assert m.add == {"mailAlias": (f"tranlan{D}",)}  # ttlan@ stays (it is the old address)
    assert m.replace["mail"] == (f"tranlan{D}",)
    # The mail store does not move: the home directory is set at creation only.
    assert "mailHomeDirectory" not in m.replace
    assert "uid" not in m.replace  # the modrdn did it
    assert p.drift == ()  # the old DN is explained by the rename


def test_move_changes_ou_and_membership() -> None:
    p = run(Case("", want=[set_("natuan2", unit="vp")]))
    assert only(p, "move", f"natuan2{D}").replace == {"ou": ("vp",)}
    assert only(p, "add_member", f"vp.tcmt-all{D}").add == {"member": (
        f"uid=natuan2,ou=people,{BASE}",)}
    assert only(p, "remove_member", f"tcmt-all{D}").delete == {"member": (
        person("natuan2"),)}


def test_big_list_changes_only_the_differing_members() -> None:
    members = tuple(f"uid=x{i},ou=people,{BASE}" for i in range(5000))
    dn = group("vp.tcmt-all")
    p = run(Case("", live=[lambda live: live[dn].update(
        member=(*live[dn]["member"], *members))]))
    c = only(p, "remove_member", f"vp.tcmt-all{D}")
    assert len(c.delete["member"]) == 5000
    assert not c.replace and not c.add
    assert [x.kind for x in p.changes] == ["remove_member"]


def test_home_directory_is_never_changed_on_an_existing_entry() -> None:
    home = "/srv/mail/old-place/natuan2"
    p = run(Case("", live=[live_set(person("natuan2"), mailHomeDirectory=(home,))]))
    assert p.changes == ()
    data = [cancel("natuan2", "2025-01-01")]
    p = run(Case("", have=data, want=data,
                 live=[live_set(person("natuan2"), mailHomeDirectory=(home,))]))
    assert only(p, "archive", f"natuan2{D}").store == home  # the real store, from live


def test_archive_and_purge_carry_the_store() -> None:
    data = [cancel("natuan2", "2025-01-01")]
    a = only(run(Case("", have=data, want=data)), "archive", f"natuan2{D}")
    assert a.store == "/var/vmail/by-id/3"  # natuan2's id
    assert not (a.add or a.delete or a.replace)
    p = run(Case("", have=data, want=data, kw={"archived": {NATUAN2_STORE: "cd" * 32}}))
    c = only(p, "purge", f"natuan2{D}")
    assert c.store == "/var/vmail/by-id/3"
    assert c.after is None and c.before is not None
    assert "cd" * 32 in c.reason


def test_order_member_removals_before_purges_and_deletes_last() -> None:
    data = [cancel("natuan2", "2025-01-01")]
    p = run(Case("", have=data, want=[*data, cancel("nv1"),
                                      add_box(address="nvbinh", name="Nguyễn Văn Bình",
                                              unit="tcmt")],
                 live=[live_add(f"uid=ghost,ou=people,{BASE}", mail=(f"ghost{D}",))],
                 kw={"archived": {NATUAN2_STORE: "ab" * 32}, "remove_drift": True}))
    kinds = [c.kind for c in p.changes]
    assert kinds == ["cancel", "create", "add_member", "remove_member", "purge", "drift"]


def test_drift_groups_before_people() -> None:
    p = run(Case("", live=[live_add(f"uid=ghost,ou=people,{BASE}"),
                           live_add(f"cn=old-all,ou=groups,{BASE}"),
                           live_add(f"ou=gone,ou=units,{BASE}")],
                 kw={"remove_drift": True}))
    assert [c.dn.split(",")[0] for c in p.changes] == ["cn=old-all", "uid=ghost", "ou=gone"]


def test_live_json_lists_work_like_tuples() -> None:
    base = _base()
    live = {dn: {k: list(v) for k, v in attrs.items()} for dn, attrs in live_of(base).items()}
    assert plan(build(base), live, today=TODAY).changes == ()


@pytest.mark.parametrize(("dn", "expected"), [
    ("UID=NaTuan, OU=People , dc=monre,dc=gov,dc=vn", "uid=natuan,ou=people,dc=monre,dc=gov,dc=vn"),
    ("cn = vpb-all ,ou=groups", "cn=vpb-all,ou=groups"),
    (unicodedata.normalize("NFD", "ou=Phòng,dc=x"), "ou=phòng,dc=x"),
    (r"cn=a\, b,dc=x", r"cn=a\, b,dc=x"),
])
def test_normalise_dn(dn: str, expected: str) -> None:
    assert normalise_dn(dn) == expected


def test_counts_and_every_kind_is_known() -> None:
    p = run(Case("", want=[cancel("natuan2"), set_("ttlan", quota_mb=4096)]))
    assert p.counts() == {"modify": 1, "cancel": 1, "remove_member": 1}
    assert set(p.counts()) <= set(CHANGE_KINDS)
    assert p.to_dict()["counts"] == p.counts()


def test_directory_type() -> None:
    assert isinstance(build(_base()), Directory)


def test_planner_manages_every_attribute_the_mapping_produces() -> None:
    """A new attribute in mailgov/directory.py must be added to plan.ATTRS_BY_KIND (and so to
    what live.py reads), or existing entries would never get it."""
    from mailgov.plan import ATTRS_BY_KIND, LOCK, READ_ATTRS

    data = _base()
    set_("ttlan", role="admin", forward_to=["lan@mard.gov.vn"], title="Chuyên viên")(data)
    add_box(address="hmt", name="Hội Môi trường", kind="affiliate", sponsor="vpb",
            unit="vpb")(data)
    suspend("natuan2")(data)
    for e in desired_entries(build(data)):
        unmanaged = set(e.attributes) - set(ATTRS_BY_KIND[e.kind]) - {LOCK}
        assert not unmanaged, (e.kind, unmanaged)
        assert set(e.attributes) <= set(READ_ATTRS)


# --- the no-op fast pass (plan._unchanged) ----------------------------------------------------

def _perturb(attr: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(entry: dict[str, Any]) -> None:
        if value is None:
            entry.pop(attr, None)
        else:
            entry[attr] = value
    return edit


_LIVE_EDITS: dict[str, Callable[[dict[str, Any]], None]] = {
    "none": lambda e: None,
    "cn changed": _perturb("cn", ("Nguyễn Anh Tuân",)),
    "aliases reordered": lambda e: e.update(mailAlias=tuple(reversed(e["mailAlias"]))),
    "values as lists": lambda e: e.update(mailAlias=list(e["mailAlias"])),
    "mail upper case": lambda e: e.update(mail=(e["mail"][0].upper(),)),
    "admin lock on an active entry": _perturb(LOCK_ATTR := "pwdAccountLockedTime",
                                              (ADMIN_LOCK,)),
    "disabled time left over": _perturb(DISABLED_AT, ("20260101000000Z",)),
    "disabled": _perturb("mailEnabled", ("FALSE",)),
    "no objectClass": _perturb("objectClass", None),
    "an extra managed value": _perturb("title", ("Vụ trưởng",)),
    "an alias gone": lambda e: e.update(mailAlias=e["mail"]),
}


@pytest.mark.parametrize("data_edit", ["none", "suspend", "cancel", "rename"])
@pytest.mark.parametrize("live_edit", sorted(_LIVE_EDITS))
def test_the_no_op_fast_pass_plans_exactly_what_the_full_comparison_plans(
        monkeypatch: pytest.MonkeyPatch, data_edit: str, live_edit: str) -> None:
    """A live entry the fast pass skips must be one the full comparison finds nothing in:
    the same plan with the pass switched off, for each way a live entry can differ."""
    import mailgov.plan as plan_mod

    data = _base()
    live = live_of(data)
    _LIVE_EDITS[live_edit](live[person("natuan")])
    edits = {"none": lambda d: None, "suspend": suspend("natuan"),
             "cancel": cancel("natuan"),
             "rename": lambda d: _box(d, "natuan").update(address="tuan.na2")}
    edits[data_edit](data)
    taken: list[bool] = []
    real = plan_mod._unchanged

    def spy(*args: Any) -> bool:
        taken.append(real(*args))
        return taken[-1]

    monkeypatch.setattr(plan_mod, "_unchanged", spy)
    fast = plan(build(data), live, today=TODAY).to_dict()
    assert taken.count(True) >= 40  # the fillers: the pass is really used
    monkeypatch.setattr(plan_mod, "_unchanged", lambda *args: False)
    full = plan(build(data), live, today=TODAY).to_dict()
    assert fast == full
    if data_edit == "none" and live_edit == "none":
        assert full["changes"] == [] and full["refusals"] == []
    elif (data_edit in ("suspend", "cancel") or live_edit in _REAL_CHANGES) and (
            data_edit, live_edit) != ("suspend", "admin lock on an active entry"):
        # (that pair: the live entry is suspended already)
        assert fast["changes"] or fast["refusals"]
    elif data_edit == "none":  # equal for the full comparison too (case, order, lists …)
        assert fast["changes"] == [] and fast["refusals"] == []


_REAL_CHANGES = {"cn changed", "admin lock on an active entry", "disabled time left over",
                 "disabled", "an alias gone"}


def test_a_cancelled_entry_without_its_dates_is_never_skipped() -> None:
    # Exactly the wanted values, but the dates a cancel records are missing: the full
    # comparison writes them (the retention counts from them), so the fast pass must not skip.
    data = _base()
    cancel("natuan")(data)
    live = live_of(data)
    for name in (DISABLED_AT, RETAIN_UNTIL):
        del live[person("natuan")][name]
    made = plan(build(data), live, today=TODAY)
    (change,) = made.changes
    assert change.dn.startswith("uid=natuan,") and set(change.replace) == {
        DISABLED_AT, RETAIN_UNTIL}
