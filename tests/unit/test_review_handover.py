"""Outside review of the planner: ordinary pull-request edits of the data file that could give
one person's mailbox, store, address or alias to another, lose a store, or purge early.

Each test is one attack, run the way CI runs a pull request: the edited data is validated
from a file (``mailgov.validate``), planned against a simulated directory loaded from the
start data (``plansim.SimDirectory``, with the review base's guards, as
``mailgov.reconcile.PlanContext`` plans) and, when the plan is clean, applied; then the
invariants of ``test_plan_properties.World._check`` are checked (an address reaches only its
first holder, a record's address is served by its own entry, no store shared or purged
without its own archive). A refused attack asserts the rule id and the words of its reason.

The start data is test_plan_properties' (natuan…tvbinh, ids 1-28; dtthu 14, hvnam 15 and
pqbao 16 cancelled). Tests marked xfail(strict) are real problems left open: each asserts the
safe outcome and turns red (XPASS) the day it is fixed.
"""

from __future__ import annotations

import copy
import json
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from test_plan_properties import DOMAIN, World, _cancelled, export

from mailgov.plan import Plan
from mailgov.validate import validate

Data = dict[str, Any]
EXEMPT = {"reason": "Thử nghiệm", "request": "1/QĐ-VPB"}
NEW_NAME = "Nguyễn Văn Mới"


@dataclass
class Outcome:
    """What one pull request came to: ``invalid`` (validation), ``refused`` (a rail),
    ``planned`` (clean, not applied) or ``applied`` (with the invariants broken, if any)."""

    status: str
    problems: list[str] = field(default_factory=list)  # "MGxxx message" of validation
    refusals: list[str] = field(default_factory=list)
    found: list[tuple[str, str]] = field(default_factory=list)  # (violation, detail)
    plan: Plan | None = None

    def rules(self) -> set[str]:
        return {t.split(" ", 1)[0] for t in (*self.problems, *self.refusals)}

    def text(self, rule: str) -> str:
        """Every message of ``rule``, joined (the test asserts its meaningful words)."""
        hits = [t for t in (*self.problems, *self.refusals) if t.startswith(rule + " ")]
        assert hits, f"no {rule} in {self}"
        return "\n".join(hits)

    def kinds(self) -> list[tuple[str, str]]:
        return [(c.kind, c.subject) for c in self.plan.changes] if self.plan else []


class Review(World):
    """The start world, with pull requests that report why they were refused."""

    def pr(self, edit: Callable[[Data], object], *, apply: bool = True,
           override: bool | str = False) -> Outcome:
        new = copy.deepcopy(self.data)
        edit(new)
        path = self._tmp / "mailboxes.yaml"  # JSON is YAML
        path.write_text(json.dumps(export(new), ensure_ascii=False, indent=1),
                        encoding="utf-8")
        result = validate(path, today=self.clock)
        if not result.ok or result.directory is None:
            return Outcome("invalid", problems=[f"{p.rule} {p.message}"
                                                for p in result.problems])
        directory = result.directory
        before, people = self.sim.holders(), len(self.sim.people())
        p = self._plan(directory, today=self.clock, allow_mass_change=override)
        if not p.ok:
            return Outcome("refused", refusals=list(p.refusals), plan=p)
        if not apply:
            return Outcome("planned", plan=p)
        events = self.sim.apply(p, today=self.clock, hints=self._hints(new),
                                retention=self._retention(directory, new))
        found = [(k.__name__, m) for k, m in
                 self._check(new, before, people, events, [], override)]
        self.data, self.base = new, directory
        return Outcome("applied", found=found, plan=p)

    def wait(self, days: int) -> Outcome:
        """Days pass; the daily reconcile of the merged data runs (reviewed override: due
        archives and purges may exceed the disable share)."""
        self.clock += timedelta(days=days)
        return self.pr(lambda d: None, override="daily run, reviewed")

    def purge_cancelled(self) -> None:
        """dtthu and hvnam (staff, cancelled 30 and 100 days ago) archived, then purged."""
        assert [k for k, _ in self.wait(200).kinds() if k == "archive"]
        assert [k for k, _ in self.wait(1).kinds() if k == "purge"]
        assert self.sim.entry_of("14") is None and self.sim.entry_of("15") is None


@pytest.fixture
def w() -> Any:
    world = Review()
    yield world
    world.close()


def box(data: Data, address: str) -> dict[str, Any]:
    return next(b for b in data["mailboxes"] if b["address"] == address)


def unit(data: Data, uid: str) -> dict[str, Any]:
    return next(u for u in data["units"] if u["id"] == uid)


def add(data: Data, address: str, ident: int = 40, **extra: Any) -> None:
    data["mailboxes"].append({"id": ident, "address": address, "name": NEW_NAME, "unit": "vpb",
                              "naming_exemption": EXEMPT, **extra})


def remove(data: Data, address: str) -> None:
    data["mailboxes"].remove(box(data, address))


def reserve(data: Data, address: str, ident: int | None) -> None:
    """What `mailgov reserve-purged` does to a purged record (by hand: the test data is JSON)."""
    remove(data, address)
    data.setdefault("reserved", []).append(
        {"address": address, **({"id": ident} if ident else {}), "reason": "purged"})


def cancel_today(w: Review, address: str) -> Callable[[Data], object]:
    return lambda d: box(d, address).update(state="cancelled",
                                            cancelled=_cancelled(w.clock.isoformat()))


MOVED = "an address would reach another mailbox than it does today"
HELD_BY_OTHER = "is held in the directory by another mailbox"
NOT_IN_DATA = "is no longer in the data, but the directory still holds its entry"
TWO_ENTRIES = "would be held by 2 entries"
ALREADY_USED = "every address, alias, unit mailbox and unit list must be different"


# --- identity: swaps and id edits ------------------------------------------------------------


def test_swapping_two_peoples_addresses_is_refused(w: Review) -> None:
    def swap(d: Data) -> None:
        a, b = box(d, "htmai"), box(d, "dtha")
        a["address"], b["address"] = "dtha", "htmai"
        a["naming_exemption"] = b["naming_exemption"] = EXEMPT

    out = w.pr(swap)
    assert out.status == "refused" and out.rules() == {"MG604", "MG614"}
    assert "mailbox id 11 (dtha@" in out.text("MG614")
    text = out.text("MG604")
    assert "id 11 (Hoàng Thị Mai) would be renamed to dtha@" in text
    assert "which the directory gives to another entry (id 12, Đặng Thu Hà" in text
    assert "rename one of them to a free address first" in text


def test_swapping_two_records_ids_is_refused(w: Review) -> None:
    def swap(d: Data) -> None:
        a, b = box(d, "htmai"), box(d, "dtha")
        a["id"], b["id"] = b["id"], a["id"]

    out = w.pr(swap)
    assert out.status == "refused" and out.rules() == {"MG604", "MG614"}
    assert "mailbox id 12 (Hoàng Thị Mai) would be renamed to htmai@" in out.text("MG604")


def test_a_records_id_edited_is_refused(w: Review) -> None:
    out = w.pr(lambda d: box(d, "htmai").update(id=99))
    assert out.status == "refused" and out.rules() == {"MG603", "MG604"}
    assert f"htmai@{DOMAIN} {HELD_BY_OTHER} (id 11, Hoàng Thị Mai, active); record id 99 " \
           "cannot take it" in out.text("MG604")
    assert f"mailbox id 11 {NOT_IN_DATA}" in out.text("MG603")


def test_an_active_record_takes_the_id_of_a_cancelled_one_is_refused(w: Review) -> None:
    out = w.pr(lambda d: (remove(d, "dtthu"), box(d, "htmai").update(id=14)))
    assert out.status == "refused" and out.rules() == {"MG603", "MG604", "MG614"}
    assert "mailbox id 14 (Hoàng Thị Mai) would be renamed to htmai@" in out.text("MG604")
    assert "(id 14, Đỗ Thị Thu, cancelled)" in out.text("MG603")


def test_an_active_record_deleted_and_its_address_given_in_the_same_pr(w: Review) -> None:
    out = w.pr(lambda d: (remove(d, "htmai"), add(d, "htmai")))
    assert out.status == "refused" and out.rules() == {"MG603", "MG604"}
    assert "its old holder keeps it (retention, then the archive)" in out.text("MG604")


def test_a_record_recycled_for_another_person_while_active_is_a_rename(w: Review) -> None:
    """A name change and a new address are also what a marriage or a corrected name look
    like (sample data: nthoa renamed_from lthoa2), so the edit cannot be told from a
    recycled record. FIXED (MG614): written without `renamed_from` it is refused, since the
    old address would bounce; written as a rename (what `mailgov rename` writes) the plan
    shows a rename, so the reviewer sees whose store it is."""
    bare = w.pr(lambda d: box(d, "htmai").update(name=NEW_NAME, address="nvmoi",
                                                 naming_exemption=EXEMPT), apply=False)
    assert bare.status == "refused" and bare.rules() == {"MG614"}
    assert f"mailbox id 11 (nvmoi@{DOMAIN}) no longer has htmai@{DOMAIN}" in bare.text("MG614")
    out = w.pr(lambda d: box(d, "htmai").update(name=NEW_NAME, address="nvmoi",
                                                renamed_from="htmai",
                                                naming_exemption=EXEMPT), apply=False)
    assert out.status == "planned"
    assert out.kinds() == [("rename", f"nvmoi@{DOMAIN}"), ("modify", f"nvmoi@{DOMAIN}")]


# --- a cancelled person's address, alias to address, alias moved -----------------------------


def test_a_cancelled_persons_address_freed_by_a_rename_is_never_given(w: Review) -> None:
    assert w.pr(cancel_today(w, "htmai")).status == "applied"
    # one pull request: the cancelled record renamed away, a newcomer at its address
    same = w.pr(lambda d: (box(d, "htmai").update(address="htmai9", naming_exemption=EXEMPT),
                           add(d, "htmai")), apply=False)
    assert same.status == "refused" and same.rules() == {"MG604", "MG614"}
    assert "(id 11, Hoàng Thị Mai, cancelled); record id 40 cannot take it" in \
        same.text("MG604")
    # two: the rename is applied (htmai@ stays on the entry as a former address) ...
    first = w.pr(_rename_htmai)
    assert first.status == "applied" and first.found == []
    # ... and the newcomer is refused, by validate while the record says so (MG219) ...
    assert w.pr(lambda d: add(d, "htmai")).rules() == {"MG219"}
    # ... and by the planner when the record's history is dropped in the same edit
    second = w.pr(_forget_and_add_htmai)
    assert second.status == "refused" and second.rules() == {"MG605", "MG614"}
    assert f"htmai@{DOMAIN} (id:11 -> id:40): {MOVED}" in second.text("MG605")


def test_an_alias_made_the_address_of_a_new_person_is_refused(w: Review) -> None:
    same = w.pr(lambda d: (box(d, "ptminh").update(aliases=["postmaster"]), add(d, "abuse")))
    assert same.status == "refused" and same.rules() == {"MG605", "MG614"}
    assert f"abuse@{DOMAIN} (id:5 -> id:40)" in same.text("MG605")
    assert w.pr(lambda d: box(d, "htmai").update(aliases=["mai.ht"])).status == "applied"
    # an alias leaves only retired in `reserved` (MG614); validate then refuses it to anyone
    assert w.pr(lambda d: box(d, "htmai").update(aliases=[])).rules() == {"MG614"}
    retired = w.pr(lambda d: (box(d, "htmai").update(aliases=[]), d.setdefault("reserved", [])
                              .append({"address": "mai.ht", "reason": "retired"})))
    # retired on purpose: it bounces by the reviewed choice (the harness reports exactly that)
    assert retired.status == "applied" and retired.found == [
        ("AddressLost", f"mai.ht@{DOMAIN} (of ['11']) reaches nobody now")]
    assert w.pr(lambda d: add(d, "mai.ht"), apply=False).rules() == {"MG221"}
    for edit in (lambda d: add(d, "mai.ht"),  # a newcomer
                 lambda d: box(d, "dtha").update(address="mai.ht", renamed_from="dtha",
                                                 naming_exemption=EXEMPT),  # a rename
                 lambda d: box(d, "dtha").update(aliases=["mai.ht"])):  # an alias moved
        # ... and with the `reserved` entry dropped in the same change, the planner does
        out = w.pr(lambda d, e=edit: (d.pop("reserved"), e(d)), apply=False)
        assert out.status == "refused" and out.rules() == {"MG605", "MG614"}
        assert f"mai.ht@{DOMAIN} (id:11 -> " in out.text("MG605")
        assert "free it in one reviewed change" in out.text("MG605")


# --- the purged: reserved, ids ---------------------------------------------------------------


def test_a_reserved_address_is_refused_for_a_person_and_a_unit(w: Review) -> None:
    w.purge_cancelled()
    assert w.pr(lambda d: reserve(d, "dtthu", 14)).status == "applied"
    person = w.pr(lambda d: add(d, "dtthu"), apply=False)
    assert person.status == "invalid" and person.rules() == {"MG221"}
    assert "'dtthu' (mailboxes[27] Nguyễn Văn Mới) is reserved" in person.text("MG221")
    assert "an address once used is never given to anyone else" in person.text("MG221")
    a_unit = w.pr(lambda d: unit(d, "vpb").update(abbr="dtthu"), apply=False)
    assert a_unit.status == "invalid" and "MG221" in a_unit.rules()
    assert "(the unit mailbox of 'vpb') is reserved" in a_unit.text("MG221")


def test_the_id_of_a_purged_mailbox_is_not_reused_for_another_address(w: Review) -> None:
    """FIXED (validate.check_ids): a record with a reserved id at an address not reserved
    with it was accepted: its entry would get the purged mailbox's store path
    (/var/vmail/by-id/14) and MG221 would then let it claim every address reserved with
    that id. And MG101's "next free id" ignored the reserved ids, proposing exactly that."""
    w.purge_cancelled()
    assert w.pr(lambda d: reserve(d, "dtthu", 14)).status == "applied"
    out = w.pr(lambda d: add(d, "nvmoi", 14), apply=False)
    assert out.status == "invalid" and out.rules() == {"MG220"}
    text = out.text("MG220")
    assert "mailbox 'nvmoi': id 14 is already the id of 'dtthu' (line " in text
    assert "every mailbox has its own id, never reused (the next free id is 29)" in text
    # its own mailbox back (a restore) is still allowed, also after a rename
    assert w.pr(lambda d: add(d, "dtthu", 14), apply=False).status == "planned"
    back = w.pr(lambda d: add(d, "thu.dt", 14, renamed_from="dtthu"), apply=False)
    assert back.status == "planned", back


def test_the_next_free_id_skips_the_ids_of_purged_mailboxes(w: Review) -> None:
    w.purge_cancelled()

    def edit(d: Data) -> None:
        reserve(d, "dtthu", 29)  # the purged one had the highest id
        d["mailboxes"].append({"address": "nvmoi", "name": NEW_NAME, "unit": "vpb",
                               "naming_exemption": EXEMPT})

    out = w.pr(edit, apply=False)
    assert out.status == "invalid" and out.rules() == {"MG101"}
    assert "required field 'id' is missing; the next free id is 30" in out.text("MG101")


PURGED_LEFT = ("was purged and its record leaves the data, but dtthu is not in `reserved`: a "
               "newcomer could be given it and receive mail meant for")


@pytest.mark.parametrize("two_prs", [False, True], ids=["same PR", "two PRs"])
def test_a_purged_records_address_is_never_given_to_a_newcomer(w: Review,
                                                               two_prs: bool) -> None:
    """FIXED (plan._purged_records_left, MG611): after the purge the directory holds nothing
    of the mailbox, so only the base of the review knows the record; it may leave the data
    only with its addresses in `reserved` (what `mailgov reserve-purged` writes)."""
    early = w.pr(lambda d: remove(d, "dtthu"), apply=False)  # its entry is still there
    assert early.status == "refused" and early.rules() == {"MG603"}, early
    w.purge_cancelled()
    if two_prs:
        first = w.pr(lambda d: remove(d, "dtthu"))
        assert first.status == "refused" and first.rules() == {"MG611"}, first
        assert "mailbox id 14 (dtthu@" in first.text("MG611")
        assert PURGED_LEFT in first.text("MG611")
        out = w.pr(lambda d: add(d, "dtthu"), apply=False)  # the record is still there
        assert out.status == "invalid" and "MG201" in out.rules(), out
    else:
        out = w.pr(lambda d: (remove(d, "dtthu"), add(d, "dtthu")))
        assert out.status == "refused" and out.rules() == {"MG611"}, out
        assert PURGED_LEFT in out.text("MG611")
    # the way out: reserve-purged's edit passes, and the address is then refused as reserved
    assert w.pr(lambda d: reserve(d, "dtthu", 14)).status == "applied"
    again = w.pr(lambda d: add(d, "dtthu"), apply=False)
    assert again.status == "invalid" and again.rules() == {"MG221"}


def test_a_rename_dated_later_is_history_already_in_the_base_and_the_file(w: Review) -> None:
    """MG614 compares the records as written: a rename dated next month is in both the
    base's and the file's history, though the entry keeps the old address until the day."""
    later = (w.clock + timedelta(days=30)).isoformat()
    renamed = [{"address": "htmai", "date": later, "request": "5/QĐ-BNNMT"}]
    first = w.pr(lambda d: box(d, "htmai").update(address="htmai9", renamed_from=renamed,
                                                  naming_exemption=EXEMPT))
    assert first.status == "applied" and first.found == [], first
    same = w.pr(lambda d: None)
    assert same.status == "applied" and same.found == [], same
    undone = w.pr(lambda d: box(d, "htmai9").update(address="htmai5",
                                                    renamed_from=renamed), apply=False)
    assert undone.status == "refused" and undone.rules() == {"MG614"}, undone
    assert f"mailbox id 11 (htmai5@{DOMAIN}) no longer has htmai9@{DOMAIN}" in \
        undone.text("MG614")


def test_a_reserved_entry_stays_unless_its_own_mailbox_has_the_address_back(
        w: Review) -> None:
    """FIXED (MG614): dropping a `reserved` entry passed, and the purged person's address was
    free for the next newcomer in the following pull request (MG611 only guards the edit
    that removes the record). The mailbox the entry names may have its address back."""
    w.purge_cancelled()
    assert w.pr(lambda d: reserve(d, "dtthu", 14)).status == "applied"
    dropped = w.pr(lambda d: d.pop("reserved"), apply=False)
    assert dropped.status == "refused" and dropped.rules() == {"MG614"}
    assert f"dtthu@{DOMAIN} leaves `reserved`: it was retired so that nobody else is given " \
           "it" in dropped.text("MG614")
    back = w.pr(lambda d: (d.pop("reserved"), add(d, "dtthu", 14)), apply=False)
    assert back.status == "planned", back


def test_a_purge_needs_the_archive_of_its_own_store(w: Review) -> None:
    """FIXED (`archived` is keyed by the store; the mail host module records no archive of a
    second store under an address that has one): a mailbox renamed onto a purged one's
    address is archived and purged on its own store's archive only, never on the other's.
    The rename needs the purged record gone without `reserved` (MG611 refuses that first):
    here the base of the review is forced to let it through, to test the second line."""
    w.purge_cancelled()
    assert w.pr(cancel_today(w, "htmai")).status == "applied"
    refused = w.pr(lambda d: remove(d, "dtthu"), apply=False)
    assert refused.status == "refused" and refused.rules() == {"MG611"}
    w.base = None  # a plan without a base (nothing to compare with); applying sets the next
    assert w.pr(lambda d: remove(d, "dtthu")).status == "applied"
    renamed = w.pr(lambda d: box(d, "htmai").update(address="dtthu", renamed_from="htmai",
                                                    naming_exemption=EXEMPT))
    assert renamed.status == "applied", renamed
    # htmai's retention is over: its store must be archived first, and dtthu's archive (of
    # /var/vmail/by-id/14) never counts as the archive of /var/vmail/by-id/11
    out = w.wait(181)
    assert ("purge", f"dtthu@{DOMAIN}") not in out.kinds(), out.kinds()
    assert ("archive", f"dtthu@{DOMAIN}") in out.kinds()
    assert not [f for f in out.found if f[0] == "EarlyPurge"], out.found


def test_a_cancelled_record_recycled_for_a_newcomer_is_refused(w: Review) -> None:
    """FIXED (plan._Planner._restored_as_itself, MG612): a restore from cancelled that also
    changes the name or the address is refused; restoring as it was still plans."""
    def recycle(d: Data) -> None:
        b = box(d, "dtthu")
        b.update(name=NEW_NAME, naming_exemption=EXEMPT)
        del b["state"], b["cancelled"]

    out = w.pr(recycle, apply=False)
    assert out.status == "refused" and out.rules() == {"MG612"}, out.kinds()
    assert "would be restored from cancelled and get another name or address" in \
        out.text("MG612")
    assert f"-> {NEW_NAME})" in out.text("MG612")

    def readdress(d: Data) -> None:
        b = box(d, "dtthu")
        b.update(address="moi.nv", renamed_from="dtthu", naming_exemption=EXEMPT)
        del b["state"], b["cancelled"]

    moved = w.pr(readdress, apply=False)
    assert moved.status == "refused" and "MG612" in moved.rules(), moved

    def restore(d: Data) -> None:
        b = box(d, "dtthu")
        del b["state"], b["cancelled"]

    assert w.pr(restore, apply=False).status == "planned"


# --- units: old addresses, merged and dissolved, moved sub-units --------------------------------


def test_a_unit_renamed_by_hand_keeps_its_old_addresses_from_people(w: Review) -> None:
    """FIXED (MG614): a rename by hand without `formerly` was applied and vpb@ bounced. Now
    it is refused; recorded, the old addresses are the unit's (MG201 at validate), and a
    later edit that drops the record again is refused by the planner (MG605 and MG614)."""
    bare = w.pr(lambda d: unit(d, "vpb").update(abbr="vpbo"))
    assert bare.status == "refused" and bare.rules() == {"MG614"}
    assert f"unit vpb no longer has the address vpb@{DOMAIN}" in bare.text("MG614")
    assert w.pr(lambda d: unit(d, "vpb").update(abbr="vpbo", formerly=[
        {"abbr": "vpb", "date": w.clock.isoformat(), "request": "5/QĐ-BNNMT"}])).found == []
    assert w.pr(lambda d: add(d, "vpb"), apply=False).rules() == {"MG201"}

    def forget(d: Data) -> None:
        del unit(d, "vpb")["formerly"]

    person = w.pr(lambda d: (forget(d), add(d, "vpb")), apply=False)
    assert person.status == "refused" and person.rules() == {"MG605", "MG614"}
    assert f"vpb@{DOMAIN} (dn:ou=vpb,ou=units,dc=monre,dc=gov,dc=vn -> id:40)" in \
        person.text("MG605")
    renamed = w.pr(lambda d: (forget(d), box(d, "htmai").update(
        address="vpb", renamed_from="htmai", naming_exemption=EXEMPT)), apply=False)
    assert renamed.status == "refused" and "-> id:11)" in renamed.text("MG605")
    alias = w.pr(lambda d: (forget(d), box(d, "htmai").update(aliases=["vpb-all"])),
                 apply=False)
    assert alias.status == "refused" and alias.rules() == {"MG606", "MG614"}
    assert f"vpb-all@{DOMAIN} {TWO_ENTRIES}" in alias.text("MG606")


def test_a_unit_renamed_with_formerly_keeps_its_old_address_after_the_period(
        w: Review) -> None:
    def rename(d: Data) -> None:
        unit(d, "vpb").update(abbr="vpbo", formerly=[
            {"abbr": "vpb", "date": w.clock.isoformat(), "request": "5/QĐ-BNNMT"}])
        d["policy"]["history"] = {"alias_days": 30, "unit_alias_days": 30}

    assert w.pr(rename).status == "applied"
    assert w.wait(31).status == "applied"  # the old unit address stops delivering
    out = w.pr(lambda d: add(d, "vpb"), apply=False)
    assert out.status == "invalid" and out.rules() == {"MG201"}
    assert "'vpb' is already used by the former unit mailbox of 'vpb'" in out.text("MG201")
    forgot = w.pr(lambda d: (unit(d, "vpb").pop("formerly"), add(d, "vpb")), apply=False)
    assert forgot.status == "refused" and forgot.rules() == {"MG605", "MG614"}


def test_a_dissolved_units_addresses_stay_its_own(w: Review) -> None:
    def merge(d: Data) -> None:
        for b in d["mailboxes"]:
            if b["unit"] == "tcmt":
                b["unit"] = "vpb"
        for u in d["units"]:  # as `mailgov unit merge` writes it
            if u.get("parent") == "tcmt":
                u.update(parent="vpb", formerly=[{"parent": "tcmt", "date": w.clock.isoformat(),
                                                  "request": "5/QĐ-BNNMT"}])
        t = unit(d, "tcmt")
        t.pop("head")
        t["dissolved"] = {"date": w.clock.isoformat(), "successor": "vpb",
                          "request": "5/QĐ-BNNMT"}
        d["policy"]["history"] = {"alias_days": 30, "unit_alias_days": 30}

    assert w.pr(merge, override="merger").found == []
    inside = w.pr(lambda d: add(d, "tcmt"), apply=False)
    assert inside.status == "invalid" and "the unit mailbox of 'tcmt'" in inside.text("MG201")
    assert w.wait(31).status == "applied"
    # Its sub-units' old addresses are made from it: it stays while they are (MG204) ...
    gone = w.pr(lambda d: d["units"].remove(unit(d, "tcmt")), apply=False)
    assert gone.status == "invalid" and gone.rules() == {"MG204"}
    assert "former parent 'tcmt' is not a unit id" in gone.text("MG204")

    def remove_tcmt(d: Data, *, itself: bool = True) -> None:  # ... or until `reserved`
        d["units"].remove(unit(d, "tcmt"))
        retired = ["tcmt", "tcmt-all"] if itself else []
        for u in d["units"]:
            if u.pop("formerly", None):
                retired.append(f"{u['id']}.tcmt")
        d["reserved"] = [{"address": a, "reason": "5/QĐ-BNNMT, period over"} for a in retired]

    # MG614: the unit leaves the data, and only `reserved` keeps its own addresses then
    half = w.pr(lambda d: remove_tcmt(d, itself=False), apply=False)
    assert half.status == "refused" and half.rules() == {"MG614"}
    assert (f"unit tcmt leaves the data, and tcmt@{DOMAIN}, tcmt-all@{DOMAIN} is not in "
            "`reserved`") in half.text("MG614")
    assert "; add them to `reserved`" in half.text("MG614")
    assert w.pr(remove_tcmt).status == "applied"
    for address in ("tcmt", "tcmt-all"):
        assert w.pr(lambda d, a=address: add(d, a), apply=False).rules() == {"MG221"}
        # the reserved entry dropped too: its entry (store) and list stay, as drift
        out = w.pr(lambda d, a=address: (d.pop("reserved"), add(d, a)), apply=False)
        assert out.status == "refused" and out.rules() == {"MG606", "MG614"}
        assert f"tcmt@{DOMAIN} leaves `reserved`" in out.text("MG614")
        assert f"{address}@{DOMAIN} {TWO_ENTRIES}" in out.text("MG606")


def test_a_moved_sub_units_old_address_is_not_given_to_a_new_sub_unit(w: Review) -> None:
    new_vp = {"id": "vp2", "abbr": "vp", "name": "Văn phòng mới", "parent": "tcmt"}
    both = w.pr(lambda d: (unit(d, "vp").update(parent="cntt"), d["units"].append(new_vp)),
                apply=False)
    assert both.status == "refused" and both.rules() == {"MG605", "MG614"}
    bare = w.pr(lambda d: unit(d, "vp").update(parent="cntt"))  # MG614: vp.tcmt@ would bounce
    assert bare.status == "refused" and bare.rules() == {"MG614"}
    assert f"unit vp no longer has the address vp.tcmt@{DOMAIN}" in bare.text("MG614")
    assert w.pr(lambda d: unit(d, "vp").update(parent="cntt", formerly=[
        {"parent": "tcmt", "date": w.clock.isoformat(), "request": "5/QĐ-BNNMT"}])).found == []
    kept = w.pr(lambda d: d["units"].append(dict(new_vp)), apply=False)
    assert kept.status == "invalid" and kept.rules() == {"MG201"}
    later = w.pr(lambda d: (unit(d, "vp").pop("formerly"), d["units"].append(dict(new_vp))),
                 apply=False)
    assert later.status == "refused" and later.rules() == {"MG605", "MG614"}
    assert (f"vp.tcmt@{DOMAIN} (dn:ou=vp,ou=units,dc=monre,dc=gov,dc=vn -> "
            "dn:ou=vp2,ou=units,dc=monre,dc=gov,dc=vn)") in later.text("MG605")


def test_swapped_unit_abbreviations_are_refused_once_per_address(w: Review) -> None:
    """FIXED (plan._holders): a unit address is in mail and mailAlias, so each moved address
    was refused twice with the same line."""
    out = w.pr(lambda d: (unit(d, "vpb").update(abbr="cntt"), unit(d, "cntt").update(abbr="vpb")),
               apply=False)
    assert out.status == "refused" and out.rules() == {"MG605", "MG614"}
    lines = [r for r in out.refusals if r.startswith("MG605")]
    assert len(lines) == len(set(lines)) == 2  # vpb@ and cntt@ (lists are matched by DN)
    assert any(f"address cntt@{DOMAIN} (dn:ou=cntt,ou=units,dc=monre,dc=gov,dc=vn -> "
               "dn:ou=vpb,ou=units" in r for r in lines)


# --- domains, forwarding ------------------------------------------------------------------------


def _migrate(d: Data) -> None:
    d["organization"]["domain"] = "mae.gov.vn"
    d["organization"]["alias_domains"] = [
        {"domain": DOMAIN, "until": "2027-01-01", "request": "35/2025/NĐ-CP"}]


def _rename_htmai(d: Data) -> None:
    box(d, "htmai").update(address="htmai9", renamed_from="htmai", naming_exemption=EXEMPT)


def _forget_and_add_htmai(d: Data) -> None:
    """The rename's record dropped by hand and a newcomer at the old address: validate
    cannot see it (MG219 needs the record); the planner does (MG605, MG614)."""
    del box(d, "htmai9")["renamed_from"]
    add(d, "htmai")


def test_a_former_address_at_the_old_domain_stays_during_the_alias_period(w: Review) -> None:
    assert w.pr(_rename_htmai).status == "applied"
    assert w.pr(_migrate, override="merger").found == []
    out = w.pr(_forget_and_add_htmai, apply=False)
    assert out.status == "refused" and out.rules() == {"MG605", "MG614"}
    assert f"htmai@{DOMAIN} (id:11 -> id:40)" in out.text("MG605")


def test_a_former_local_part_is_not_given_at_the_new_domain(w: Review) -> None:
    """FIXED (plan._holders, MG605): a former address at a domain no longer served keeps its
    local part for its holder at the primary domain (a migration keeps local parts)."""
    assert w.pr(_rename_htmai).status == "applied"
    assert w.pr(_migrate, override="merger").found == []
    w.clock = date(2027, 1, 1)
    assert w.pr(lambda d: None, override="the alias period ends").status == "applied"
    out = w.pr(lambda d: (d["organization"].pop("alias_domains"), _forget_and_add_htmai(d)),
               apply=False)
    assert out.status == "refused" and out.rules() == {"MG605", "MG614"}, out.kinds()
    assert f"htmai@mae.gov.vn (id:11 -> id:40; id:11 held htmai@{DOMAIN})" in out.text("MG605")


def test_a_forward_into_a_new_alias_domain_does_not_reach_a_local_namesake(
        w: Review) -> None:
    """FIXED (plan, MG613 against the base of the review): absorbing a domain that a forward
    points into is refused until the forward is settled in its own change."""
    assert box(w.data, "tvbinh")["forward_to"] == ["binh@mard.gov.vn"]  # someone at MARD
    assert w.pr(lambda d: add(d, "binh")).status == "applied"  # someone else, here

    def absorb(d: Data) -> None:
        d["organization"].update(alias_domains=[
            {"domain": "mard.gov.vn", "request": "35/2025/NĐ-CP"}])

    out = w.pr(absorb, override="merger")
    assert out.status == "refused" and out.rules() == {"MG613"}, out
    assert ("forwards to binh@mard.gov.vn, and mard.gov.vn becomes an alias domain in this "
            "change: those copies would stay here and reach the holder of binh") in \
        out.text("MG613")
    assert w.sim.holders().get("binh@mard.gov.vn") is None
    # settled first (the forward removed), then absorbed: no refusal
    assert w.pr(lambda d: box(d, "tvbinh").pop("forward_to")).status == "applied"
    assert w.pr(absorb, override="merger").status == "applied"


def test_a_forward_to_a_free_own_address_is_not_accepted(w: Review) -> None:
    """FIXED (validate, MG408): a forward to an address of the organisation nobody holds
    would silently reach whoever is given that address later."""
    out = w.pr(lambda d: box(d, "htmai").update(forward_to=[f"mai.moi@{DOMAIN}"]),
               apply=False)
    assert out.status == "invalid" and out.rules() == {"MG408"}, out
    assert (f"forwards to mai.moi@{DOMAIN}, which no mailbox, alias, unit mailbox or list "
            "holds; whoever is given that address later would receive copies") in \
        out.text("MG408")
    held = w.pr(lambda d: box(d, "htmai").update(forward_to=[f"vpb@{DOMAIN}"]), apply=False)
    assert held.status == "planned", held  # a unit mailbox in use: fine


def test_a_forward_to_a_cancelled_address_never_reaches_a_newcomer(w: Review) -> None:
    """Forwards keep the local copy (postfix__ldap_alias_result_attributes: mail and the
    forwards), so the cancelled target only bounces the copy; its address stays reserved."""
    assert w.pr(lambda d: box(d, "htmai").update(
        forward_to=[f"dtthu@{DOMAIN}"])).found == []
    w.purge_cancelled()
    assert w.pr(lambda d: reserve(d, "dtthu", 14)).status == "applied"
    out = w.pr(lambda d: add(d, "dtthu"), apply=False)
    assert out.status == "invalid" and out.rules() == {"MG221"}


# --- spelling: case, Unicode, spaces -----------------------------------------------------------


@pytest.mark.parametrize(("path", "value"), [
    (("mailboxes", "htmai", "address"), "HTmai"),
    (("mailboxes", "htmai", "address"), "htmai "),
    (("mailboxes", "htmai", "address"), "ｈtmai"),  # fullwidth h
    (("mailboxes", "htmai", "aliases"), ["DTHA"]),
    (("mailboxes", "htmai", "aliases"), [f"dtha@{DOMAIN.upper()}"]),
    (("units", "vpb", "delegates"), ["TTLAN"]),
], ids=["upper address", "trailing space", "fullwidth", "upper alias", "upper domain",
        "upper delegate"])
def test_case_and_unicode_variants_of_an_address_are_refused(w: Review, path: tuple[str, ...],
                                                             value: Any) -> None:
    def edit(d: Data) -> None:
        if path[0] == "units":
            unit(d, path[1])["mailbox"][path[2]] = value
        else:
            box(d, path[1])[path[2]] = value

    out = w.pr(edit, apply=False)
    assert out.status == "invalid" and out.rules() == {"MG105"}
    assert "has the wrong form" in out.text("MG105")


def test_an_alias_spelled_as_another_persons_full_address_is_refused(w: Review) -> None:
    out = w.pr(lambda d: box(d, "htmai").update(aliases=[f"dtha@{DOMAIN}"]), apply=False)
    assert out.status == "invalid" and out.rules() == {"MG201"}
    assert ALREADY_USED in out.text("MG201")
    loop = w.pr(lambda d: box(d, "htmai").update(forward_to=[f"HTMAI@{DOMAIN}"]),
                apply=False)
    assert loop.status == "invalid" and "forwards to itself" in loop.text("MG404")


def test_a_name_in_nfd_or_with_extra_spaces_changes_nothing(w: Review) -> None:
    for name in (unicodedata.normalize("NFD", "Hoàng Thị Mai"), " Hoàng  Thị Mai "):
        out = w.pr(lambda d, n=name: box(d, "htmai").update(name=n), apply=False)
        assert out.status == "planned" and out.kinds() == []


# --- unit mailboxes' delegates -----------------------------------------------------------------


def test_a_delegate_renamed_keeps_the_delegation_and_a_cancelled_one_is_refused(
        w: Review) -> None:
    def rename(d: Data) -> None:
        box(d, "ttlan").update(address="ttlan9", renamed_from="ttlan", naming_exemption=EXEMPT)
        unit(d, "vpb")["mailbox"]["delegates"] = ["ttlan9"]

    out = w.pr(rename)
    assert out.status == "applied" and out.found == []
    # the group's member follows the modify DN (refint): no member change planned
    assert out.kinds() == [("rename", f"ttlan9@{DOMAIN}"), ("modify", f"ttlan9@{DOMAIN}")]
    taken = w.pr(lambda d: add(d, "ttlan"), apply=False)
    assert taken.status == "invalid" and "old address 'ttlan' is used by" in \
        taken.text("MG219")
    gone = w.pr(cancel_today(w, "ttlan9"), apply=False)
    assert gone.status == "invalid"
    assert "delegate 'ttlan9' is a cancelled personal mailbox" in gone.text("MG217")


# --- per-unit files ---------------------------------------------------------------------------


def _split(w: Review, data: Data, where: dict[str, str] | None = None,
           extra: dict[str, list[dict[str, Any]]] | None = None) -> Any:
    """``data`` written as a main file including units/vpb.yaml and units/tcmt.yaml (records
    of those units, or as ``where`` says); ``extra`` adds records to a unit file."""
    root = w._tmp / "split"
    (root / "units").mkdir(parents=True, exist_ok=True)
    d = copy.deepcopy(data)
    files: dict[str, list[dict[str, Any]]] = {"vpb": [], "tcmt": []}
    rest = []
    for b in d["mailboxes"]:
        f = (where or {}).get(b["address"], b["unit"])
        files.get(f, rest).append(b)
    for name, records in (extra or {}).items():
        files[name] += records
    for name, records in files.items():
        (root / "units" / f"{name}.yaml").write_text(
            json.dumps({"mailboxes": records}, ensure_ascii=False), encoding="utf-8")
    d["mailboxes"] = [{"include": f"units/{n}.yaml"} for n in files] + rest
    (root / "mailboxes.yaml").write_text(json.dumps(d, ensure_ascii=False), encoding="utf-8")
    return validate(root / "mailboxes.yaml", today=w.clock)


def test_a_record_moved_between_unit_files_is_matched_by_its_id(w: Review) -> None:
    same = _split(w, w.data)
    assert same.ok and w._plan(same.directory, today=w.clock).changes == ()
    moved = copy.deepcopy(w.data)
    box(moved, "htmai")["unit"] = "tcmt"
    result = _split(w, moved, where={"htmai": "tcmt"})
    p = w._plan(result.directory, today=w.clock)
    assert p.ok and (p.changes[0].kind, p.changes[0].subject) == ("move", f"htmai@{DOMAIN}")
    box(moved, "htmai")["id"] = 99  # moved and its id edited in the same pull request
    p = w._plan(_split(w, moved, where={"htmai": "tcmt"}).directory, today=w.clock)
    assert {r.split(" ", 1)[0] for r in p.refusals} == {"MG603", "MG604"}
    copied = copy.deepcopy(box(w.data, "htmai"))  # copied, not moved
    copied["unit"] = "tcmt"
    twice = _split(w, w.data, extra={"tcmt": [copied]})
    assert {p.rule for p in twice.problems} == {"MG201", "MG220"}
    assert any("id 11 is already the id of 'htmai'" in p.message for p in twice.problems)


def test_a_record_moved_into_a_file_that_is_not_included_is_refused(w: Review) -> None:
    data = copy.deepcopy(w.data)
    remove(data, "htmai")  # it went to units/cntt.yaml, which nothing includes
    p = w._plan(_split(w, data).directory, today=w.clock)
    assert [r.split(" ", 1)[0] for r in p.refusals] == ["MG603"]
    assert f"htmai@{DOMAIN}: the record of mailbox id 11 {NOT_IN_DATA}" in p.refusals[0]


# --- dated changes and the daily reconcile ----------------------------------------------------


def test_a_dated_rename_onto_a_former_alias_is_refused_on_its_day(w: Review) -> None:
    """The review plans the data as of today, so the pull request passes; the daily reconcile
    of the day refuses (nothing moves). Late, but no mail goes astray. (Since MG614 an alias
    leaves only into `reserved`, where validate refuses it at once: the base is forced here,
    as a data file merged without review would be, to test the planner's own line.)"""
    assert w.pr(lambda d: box(d, "dtha").update(aliases=["mai.h"])).status == "applied"
    retire = w.pr(lambda d: box(d, "dtha").update(aliases=[]))
    assert retire.status == "refused" and retire.rules() == {"MG614"}
    w.base = None  # a plan without a base (nothing to compare with); applying sets the next
    assert w.pr(lambda d: box(d, "dtha").update(aliases=[])).status == "applied"
    day = (w.clock + timedelta(days=10)).isoformat()
    pr = w.pr(lambda d: box(d, "htmai").update(address="mai.h", naming_exemption=EXEMPT,
                                               renamed_from=[{"address": "htmai", "date": day,
                                                              "request": "3/QĐ-VPB"}]))
    assert pr.status == "applied" and pr.kinds() == []
    assert pr.plan is not None and pr.plan.scheduled == (
        f"{day} rename htmai@{DOMAIN} -> mai.h@{DOMAIN} (3/QĐ-VPB)",)
    due = w.wait(10)
    assert due.status == "refused" and due.rules() == {"MG605"}
    assert f"mai.h@{DOMAIN} (id:12 -> id:11): {MOVED}" in due.text("MG605")


def test_a_dated_rename_keeps_both_addresses_from_others_until_its_day(w: Review) -> None:
    day = (w.clock + timedelta(days=10)).isoformat()
    assert w.pr(lambda d: box(d, "htmai").update(
        address="mai.h", naming_exemption=EXEMPT,
        renamed_from=[{"address": "htmai", "date": day, "request": "3/QĐ-VPB"}])).found == []
    out = w.pr(lambda d: add(d, "htmai"), apply=False)
    assert out.status == "invalid" and "old address 'htmai' is used by" in out.text("MG219")
    out = w.pr(lambda d: add(d, "mai.h"), apply=False)
    assert out.status == "invalid" and ALREADY_USED in out.text("MG201")
    due = w.wait(10)
    assert due.found == [] and due.kinds() == [("rename", f"mai.h@{DOMAIN}"),
                                               ("modify", f"mai.h@{DOMAIN}")]


def test_a_dated_cancel_counts_its_retention_from_the_day_it_is_applied(w: Review) -> None:
    day = w.clock + timedelta(days=10)
    assert w.pr(lambda d: box(d, "htmai").update(
        state="cancelled", cancelled=_cancelled(day.isoformat()))).kinds() == []
    between = w.pr(lambda d: (remove(d, "htmai"), add(d, "htmai")), apply=False)
    assert between.status == "refused" and between.rules() == {"MG603", "MG604"}
    due = w.wait(10)
    assert ("cancel", f"htmai@{DOMAIN}") in due.kinds() and due.found == []
    assert w.sim.disabled_at["11"] == (day, 180)
    assert [k for k, s in w.wait(179).kinds() if s == f"htmai@{DOMAIN}"] == []


def test_a_dated_move_waits_for_its_day(w: Review) -> None:
    day = (w.clock + timedelta(days=10)).isoformat()
    pr = w.pr(lambda d: box(d, "htmai").update(unit="tcmt", moved_from={
        "unit": "vpb", "date": day, "request": "3/QĐ-VPB"}))
    assert pr.kinds() == []
    assert w.wait(10).kinds()[0] == ("move", f"htmai@{DOMAIN}")


def test_the_start_world_has_nothing_left_to_do(w: Review) -> None:
    """The harness itself: a pull request that changes nothing plans nothing."""
    assert w.pr(lambda d: None).kinds() == []
    assert isinstance(Path(w._tmp), Path)
