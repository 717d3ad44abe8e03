"""mailgov.archive (what is due, naming, manifest, checks) and the mail host's store module."""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import io
import json
import os
from datetime import UTC, date, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from mailgov import archive as ar
from mailgov.model import Directory, build
from tools.generate import POLICY

BASE = "dc=monre,dc=gov,dc=vn"
REPO = Path(__file__).resolve().parents[2]


def _load_module() -> ModuleType:
    # On the mail host Ansible ships module_utils/mailgov_archive_format.py, a link to
    # mailgov/archive_format.py: here the package's copy stands for it (the same file).
    import sys

    import mailgov.archive_format

    assert (REPO / "module_utils" / "mailgov_archive_format.py").resolve() == \
        Path(mailgov.archive_format.__file__).resolve()
    sys.modules.setdefault("ansible.module_utils.mailgov_archive_format", mailgov.archive_format)
    path = REPO / "library" / "mailgov_mail_store.py"
    spec = importlib.util.spec_from_file_location("mailgov_mail_store", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


store_mod = _load_module()


def directory() -> Directory:
    policy = copy.deepcopy(POLICY)
    policy["retention"] = {"staff_days": 180, "heads_days": 365}
    cancel = {"date": "2026-01-01", "reason": "retired", "request": "1/QĐ-TCCB"}
    data: dict[str, Any] = {
        "version": 1,
        "organization": {"name": "Bộ", "domain": "monre.gov.vn", "base_dn": BASE,
                         "it_unit": "vpb"},
        "policy": policy,
        "units": [{"id": "vpb", "name": "Văn phòng Bộ"}],
        "mailboxes": [
            {"address": "natuan", "name": "Nguyễn Anh Tuấn", "unit": "vpb"},
            {"address": "lthoa", "name": "Lê Thị Hoa", "unit": "vpb", "state": "cancelled",
             "cancelled": cancel},
            {"address": "ptminh", "name": "Phạm Thị Minh", "unit": "vpb", "role": "head",
             "state": "cancelled", "cancelled": cancel},
            {"address": "ttlan", "name": "Trần Thị Lan", "unit": "vpb", "state": "suspended",
             "suspended": {"date": "2026-01-01", "reason": "Nghỉ", "request": "2/QĐ-TCCB"}},
        ],
    }
    return build(data)


# --------------------------------------------------------------------------- due


@pytest.mark.parametrize(("today", "due"), [
    (date(2026, 6, 29), []),                      # staff: 180 days end on 2026-06-30
    (date(2026, 6, 30), ["lthoa"]),               # the first day past retention
    (date(2027, 1, 1), ["lthoa", "ptminh"]),      # head: 365 days
    (date(2025, 1, 1), []),
])
def test_due_stores_follow_retention(today: date, due: list[str]) -> None:
    got = ar.due_stores(directory(), today)
    assert [d.address.split("@")[0] for d in got] == due
    for d in got:
        local = d.address.split("@")[0]
        assert d.store == f"/var/vmail/monre.gov.vn/{local}"
        assert d.dn == f"uid={local},ou=people,{BASE}"


def test_active_and_suspended_are_never_due() -> None:
    d = directory()
    for m in d.mailboxes:
        if m.state != "cancelled":
            assert not ar.is_due(m, d.policy, date(2100, 1, 1))


# --------------------------------------------------------------------------- naming, manifest


def test_archive_name() -> None:
    assert ar.archive_name("LThoa@monre.gov.vn", date(2026, 7, 1)) == \
        "lthoa@monre.gov.vn-20260701.tar.gz"
    with pytest.raises(ValueError):
        ar.archive_name("../etc/passwd", date(2026, 7, 1))


def entry(sha: str = "a" * 64, size: int = 10) -> dict[str, Any]:
    return {"archive": "x@monre.gov.vn-20260701.tar.gz", "sha256": sha, "size": size,
            "store": "/var/vmail/monre.gov.vn/x", "files": 1, "created": "2026-07-01T00:00:00Z"}


def test_manifest_round_trip_and_add_never_replaces() -> None:
    m = ar.add_entry(ar.empty_manifest(), "x@monre.gov.vn", entry())
    again = ar.add_entry(m, "x@monre.gov.vn", entry(sha="b" * 64))
    assert again["archives"]["x@monre.gov.vn"]["sha256"] == "a" * 64
    assert ar.parse_manifest(json.dumps(again)) == again
    assert ar.archived_map(again) == {entry()["store"]: "a" * 64}  # keyed by the store
    assert ar.parse_manifest("") == ar.empty_manifest()


@pytest.mark.parametrize(("text", "message"), [
    ("{", "not JSON"),
    ('{"version": 2, "archives": {}}', "version"),
    ('{"version": 1}', "archives"),
    (json.dumps({"version": 1, "archives": {"x": {**entry(), "sha256": "XYZ"}}}), "sha256"),
    (json.dumps({"version": 1, "archives": {"x": {**entry(), "archive": "../a.tar.gz"}}}),
     "file name"),
    (json.dumps({"version": 1, "archives": {"x": {**entry(), "store": "rel"}}}), "absolute"),
])
def test_bad_manifest(text: str, message: str) -> None:
    with pytest.raises(ar.ManifestError, match=message):
        ar.parse_manifest(text)


def test_sha256_stream() -> None:
    data = os.urandom(3 << 20)
    digest, size = ar.sha256_stream(io.BytesIO(data), chunk=1000)
    assert (digest, size) == (hashlib.sha256(data).hexdigest(), len(data))


# --------------------------------------------------------------------------- the host module


def make_store(root: Path) -> Path:
    store = root / "monre.gov.vn" / "lthoa"
    new = store / "Maildir" / "cur"
    new.mkdir(parents=True)
    (new / "1.msg:2,S").write_bytes(b"Subject: keep me\r\n\r\nbody\r\n")
    (store / "Maildir" / "dovecot-uidlist").write_text("3 V1 N2\n")
    return store


def tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file()}


def test_module_archive_matches_manifest_format_and_restores(tmp_path: Path) -> None:
    store = make_store(tmp_path / "vmail")
    before = tree(store)
    adir = tmp_path / "archives"
    now = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    e = store_mod.make_archive(str(store), str(adir), "lthoa@monre.gov.vn", now)
    assert ar.entry_problems(e) == []
    assert e["archive"] == ar.archive_name("lthoa@monre.gov.vn", now.date())
    assert e["files"] == 2
    with open(adir / e["archive"], "rb") as fh:
        assert ar.sha256_stream(fh) == (e["sha256"], e["size"])
    manifest = ar.add_entry(ar.empty_manifest(), "lthoa@monre.gov.vn", e)
    store_mod.write_manifest(str(adir), manifest)
    assert ar.load_manifest(adir / "manifest.json") == manifest
    assert store_mod.read_manifest(str(adir)) == manifest

    # purge, then restore into the original place: identical content
    import shutil
    shutil.rmtree(store)
    assert store_mod.restore(str(adir), e, str(store), force=False) == 2
    assert tree(store) == before
    # and into another place
    other = tmp_path / "elsewhere" / "lthoa-restored"
    store_mod.restore(str(adir), e, str(other), force=False)
    assert tree(other) == before


def test_module_refuses_tampered_archive_and_busy_destination(tmp_path: Path) -> None:
    store = make_store(tmp_path / "vmail")
    adir = tmp_path / "archives"
    e = store_mod.make_archive(str(store), str(adir), "lthoa@monre.gov.vn",
                               datetime(2026, 7, 1, tzinfo=UTC))
    with pytest.raises(store_mod.StoreError, match="not empty"):
        store_mod.restore(str(adir), e, str(store), force=False)
    with open(adir / e["archive"], "ab") as fh:
        fh.write(b"x")
    assert "does not match" in store_mod.verified(str(adir), e)
    with pytest.raises(store_mod.StoreError, match="does not match"):
        store_mod.restore(str(adir), e, str(tmp_path / "new"), force=False)
    os.unlink(adir / e["archive"])
    assert "missing" in store_mod.verified(str(adir), e)


def test_module_archives_missing_store_as_empty(tmp_path: Path) -> None:
    e = store_mod.make_archive(str(tmp_path / "none" / "x"), str(tmp_path / "a"),
                               "x@monre.gov.vn", datetime(2026, 7, 1, tzinfo=UTC))
    assert e["files"] == 0 and ar.entry_problems(e) == []


def test_module_sees_mail_newer_than_the_archive(tmp_path: Path) -> None:
    store = make_store(tmp_path / "vmail")
    old = datetime(2026, 7, 1, tzinfo=UTC).timestamp()
    for p in store.rglob("*"):
        os.utime(p, (old, old))
    e = store_mod.make_archive(str(store), str(tmp_path / "a"), "lthoa@monre.gov.vn",
                               datetime(2026, 7, 2, tzinfo=UTC))
    assert e["newest"] == old
    assert not store_mod.changed_since(e, str(store))
    # index files rewritten by a reader do not count; a new message does
    (store / "Maildir" / "dovecot.index.log").write_bytes(b"x")
    assert not store_mod.changed_since(e, str(store))
    (store / "Maildir" / "new" ).mkdir()
    (store / "Maildir" / "new" / "2.msg").write_bytes(b"Subject: late\r\n\r\n")
    assert store_mod.changed_since(e, str(store))


def test_purge_needs_the_archive_of_that_very_store_holding_every_message(
        tmp_path: Path) -> None:
    store = make_store(tmp_path / "vmail")
    adir = tmp_path / "archives"
    mb = {"address": "lthoa@monre.gov.vn", "store": str(store), "dn": "uid=lthoa,…"}
    old = datetime(2026, 7, 1, tzinfo=UTC).timestamp()
    for p in store.rglob("*"):
        os.utime(p, (old, old))
    e = store_mod.make_archive(str(store), str(adir), mb["address"],
                               datetime(2026, 7, 2, tzinfo=UTC))
    assert store_mod._not_purgeable(str(adir), e, mb, contents=True) is None
    # Flags changed after the archive (Dovecot renames the file): still the same message.
    cur = store / "Maildir" / "cur"
    os.rename(cur / "1.msg:2,S", cur / "1.msg:2,RS")
    assert store_mod._not_purgeable(str(adir), e, mb, contents=True) is None
    # A message put back with an old date is not newer, but it is not in the archive.
    (cur / "0.old:2,S").write_bytes(b"Subject: restored by hand\r\n\r\n")
    os.utime(cur / "0.old:2,S", (old, old))
    why = store_mod._not_purgeable(str(adir), e, mb, contents=True)
    assert why is not None and "1 message(s) of the store are not in its archive" in why
    os.unlink(cur / "0.old:2,S")
    # The archive recorded for the address is of another store (a previous holder's).
    other = {**mb, "store": str(tmp_path / "vmail" / "by-id" / "7")}
    # The same reason whether the archive's contents are read (purged) or not (verified).
    for contents in (True, False):
        assert store_mod._not_purgeable(str(adir), e, other, contents=contents) == (
            f"the archive recorded for this address is of {store}, not of {other['store']}; "
            "move the old record aside in the manifest, then archive this store")


def test_module_purges_a_store_only_on_a_verified_unchanged_archive(tmp_path: Path) -> None:
    store = make_store(tmp_path / "vmail")
    adir = tmp_path / "archives"
    mb = {"address": "lthoa@monre.gov.vn", "store": str(store), "dn": "uid=lthoa,…"}
    assert "no archive recorded" in store_mod._not_purgeable(str(adir), None, mb)
    old = datetime(2026, 7, 1, tzinfo=UTC).timestamp()
    for p in store.rglob("*"):
        os.utime(p, (old, old))
    e = store_mod.make_archive(str(store), str(adir), mb["address"],
                               datetime(2026, 7, 2, tzinfo=UTC))
    assert store_mod._not_purgeable(str(adir), e, mb) is None
    (store / "Maildir" / "cur" / "2.msg:2,").write_bytes(b"Subject: late\r\n\r\n")
    assert "mail arrived after" in store_mod._not_purgeable(str(adir), e, mb)
    os.unlink(store / "Maildir" / "cur" / "2.msg:2,")
    # a record without its newest message time (an older manifest, a hand edit) cannot
    # show that no mail arrived: said so, not guessed as "mail arrived after"
    for newest in (None, "1751414400", True):
        odd = {k: v for k, v in e.items() if k != "newest"} | (
            {} if newest is None else {"newest": newest})
        assert store_mod._not_purgeable(str(adir), odd, mb).startswith(
            "the archive record has no 'newest' message time")
    with open(adir / e["archive"], "ab") as fh:
        fh.write(b"x")
    assert "does not match" in store_mod._not_purgeable(str(adir), e, mb)


# --------------------------------------------------------------------------- the module's main()
# main() run in-process as Ansible runs it (its arguments through ansible.module_utils.testing),
# against temporary directories. The directory (slapd over ldapi) is the one stand-in: a fake
# ansible.module_utils.mailgov_ldapi whose entries are the DNs given.

D = "@monre.gov.vn"
HOA = f"hoa{D}"


def run_main(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
             args: dict[str, Any], entries: tuple[str, ...] = (),
             connects: list[str] | None = None) -> dict[str, Any]:
    """The module's JSON result (``rc``: its exit code); ``connects`` collects the URIs the
    module connected to."""
    import sys

    from ansible.module_utils.testing import patch_module_args

    ldapi = ModuleType("ansible.module_utils.mailgov_ldapi")
    seen = connects if connects is not None else []
    ldapi.connect = lambda uri: seen.append(uri) or object()  # type: ignore[attr-defined]
    ldapi.entry_exists = lambda conn, dn: dn in entries  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ansible.module_utils.mailgov_ldapi", ldapi)
    capsys.readouterr()
    # _ansible_no_log: no invocation record in the test machine's syslog
    with patch_module_args({**args, "_ansible_no_log": True}), \
            pytest.raises(SystemExit) as ended:
        store_mod.main()
    result = json.loads(capsys.readouterr().out)
    result["rc"] = ended.value.code
    return result


def by_id_store(vmail: Path, number: int, message: str, mtime: float) -> Path:
    """A store as the by-id layout names it (/var/vmail/by-id/<id>) with one message."""
    store = vmail / "by-id" / str(number)
    cur = store / "Maildir" / "cur"
    cur.mkdir(parents=True)
    (cur / f"{message}:2,S").write_bytes(f"Subject: {message}\r\n\r\nbody\r\n".encode())
    for p in [store, *store.rglob("*")]:
        os.utime(p, (mtime, mtime))
    return store


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under root (stores, archives, manifest) with its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def seven_archived(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                   capsys: pytest.CaptureFixture[str]
                   ) -> tuple[Path, Path, dict[str, str], str]:
    """(vmail root, archive dir, mailbox 7's item, its archive's sha256): mailbox 7 (hoa@,
    mail of 2026-01-01) archived by the module."""
    vmail, adir = tmp_path / "vmail", tmp_path / "archives"
    store7 = by_id_store(vmail, 7, "1.seven", datetime(2026, 1, 1, tzinfo=UTC).timestamp())
    mb7 = {"address": HOA, "store": str(store7), "dn": "uid=hoa.old,ou=people," + BASE}
    got = run_main(monkeypatch, capsys, {"state": "archived", "mailboxes": [mb7],
                                         "archive_dir": str(adir)})
    assert (got["rc"], got["archived"], got["left"]) == (0, [HOA], {})
    return vmail, adir, mb7, got["manifest"]["archives"][HOA]["sha256"]


# 8's mail newer than 7's archive: a check on the address alone would archive 8 and replace
# 7's record; older: it would call 8 "already archived" on 7's archive.
@pytest.mark.parametrize("eight_newer", [True, False], ids=["8-newer", "8-older"])
def test_main_leaves_unarchived_a_store_whose_address_holds_another_stores_archive(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        eight_newer: bool) -> None:
    """Mailbox 7 (hoa@) was archived; mailbox 8 was renamed onto hoa@ and is now due. The one
    record under hoa@ is 7's: 8 is left unarchived with the reason, nothing is replaced or
    deleted, and no `verified` output counts 7's archive as 8's store's."""
    vmail, adir, mb7, sha7 = seven_archived(tmp_path, monkeypatch, capsys)
    store7, old = mb7["store"], datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    store8 = by_id_store(vmail, 8, "2.eight",
                         datetime.now(UTC).timestamp() if eight_newer else old - 86400)
    mb8 = {"address": HOA, "store": str(store8), "dn": "uid=hoa,ou=people," + BASE}
    before = snapshot(tmp_path)

    got = run_main(monkeypatch, capsys, {"state": "archived", "mailboxes": [mb8],
                                         "archive_dir": str(adir)}, entries=(mb8["dn"],))
    assert got["left"] == {HOA: (
        f"the archive recorded for this address is of {store7}, not of {store8}; not "
        "archived (and so never purged): move the old record aside in the manifest first")}
    assert (got["rc"], got["changed"], got["archived"]) == (0, False, [])
    assert got["manifest"]["archives"][HOA]["store"] == str(store7)
    assert snapshot(tmp_path) == before  # no archive written, manifest and stores as they were

    # What lifecycle.yml asks (every recorded archive): 7's, keyed by 7's store, never by 8's.
    got = run_main(monkeypatch, capsys, {"state": "verified", "archive_dir": str(adir)})
    assert got["rc"] == 0 and got["verified"] == {str(store7): sha7}, got
    # Asked for 8 itself: 7's archive is not 8's store's, whatever the mtimes say (8-newer: not
    # "mail arrived after its archive"; 8-older: 7's store not listed as verified for 8).
    other = (f"the archive recorded for this address is of {store7}, not of {store8}; move "
             "the old record aside in the manifest, then archive this store")
    got = run_main(monkeypatch, capsys, {"state": "verified", "mailboxes": [mb8],
                                         "archive_dir": str(adir)})
    assert (got["rc"], got["changed"], got["verified"], got["left"]) == \
        (0, False, {}, {HOA: other}), got
    # Asked for 7 and 8 (the same address): 7's archive is 7's, and only 7's.
    got = run_main(monkeypatch, capsys, {"state": "verified", "mailboxes": [mb7, mb8],
                                         "archive_dir": str(adir)})
    assert (got["rc"], got["verified"], got["left"]) == \
        (0, {str(store7): sha7}, {HOA: other}), got

    # 8's entry gone (purged by the reconcile): its store is still not deleted on 7's archive.
    got = run_main(monkeypatch, capsys, {"state": "purged", "mailboxes": [mb8],
                                         "archive_dir": str(adir)})
    assert got["rc"] == 1 and got["failed"] is True and got["purged"] == []
    assert got["msg"] == f"{HOA}: {other}; nothing purged"
    assert snapshot(tmp_path) == before


def test_main_verifies_and_purges_a_store_on_its_own_archive(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    vmail, adir = tmp_path / "vmail", tmp_path / "archives"
    old = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    store7 = by_id_store(vmail, 7, "1.seven", old)
    store8 = by_id_store(vmail, 8, "2.eight", old)
    mb8 = {"address": HOA, "store": str(store8), "dn": "uid=hoa,ou=people," + BASE}

    got = run_main(monkeypatch, capsys, {"state": "archived", "mailboxes": [mb8],
                                         "archive_dir": str(adir)}, entries=(mb8["dn"],))
    assert (got["rc"], got["changed"], got["archived"], got["left"]) == (0, True, [HOA], {})
    e = got["manifest"]["archives"][HOA]
    assert e["store"] == str(store8) and e["files"] == 1
    with open(adir / e["archive"], "rb") as fh:
        assert ar.sha256_stream(fh) == (e["sha256"], e["size"])
    # archived again: left alone, as already archived
    again = run_main(monkeypatch, capsys, {"state": "archived", "mailboxes": [mb8],
                                           "archive_dir": str(adir)}, entries=(mb8["dn"],))
    assert (again["archived"], again["left"]) == ([], {HOA: "already archived"})

    for mailboxes in ([], [mb8]):
        got = run_main(monkeypatch, capsys, {"state": "verified", "mailboxes": mailboxes,
                                             "archive_dir": str(adir)})
        assert (got["rc"], got["verified"], got["left"]) == (0, {str(store8): e["sha256"]}, {})

    # the entry still there: nothing deleted; gone: 8's store goes, 7's stays
    got = run_main(monkeypatch, capsys, {"state": "purged", "mailboxes": [mb8],
                                         "archive_dir": str(adir)}, entries=(mb8["dn"],))
    assert got["rc"] == 0 and got["purged"] == [] and store8.is_dir()
    assert "entry still in the directory" in got["left"][HOA]
    got = run_main(monkeypatch, capsys, {"state": "purged", "mailboxes": [mb8],
                                         "archive_dir": str(adir)})
    assert (got["rc"], got["changed"], got["purged"]) == (0, True, [HOA])
    assert not store8.exists() and store7.is_dir()


def test_main_verifies_every_recorded_archive_from_one_reading_of_the_manifest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """state=verified with no mailboxes lists the records and checks them against the same
    reading of the manifest: an archived run writing in between (here: 7's record moved aside
    and 8 archived under hoa@) gives a consistent answer, never a reason about a record the
    module did not check."""
    vmail, adir, mb7, sha7 = seven_archived(tmp_path, monkeypatch, capsys)
    store7 = mb7["store"]
    first = store_mod.read_manifest(str(adir))
    later = copy.deepcopy(first)
    later["archives"][HOA]["store"] = str(vmail / "by-id" / "8")
    later["archives"][f"lan{D}"] = {**first["archives"][HOA], "store": str(vmail / "x")}
    readings = iter([first, later, later])
    monkeypatch.setattr(store_mod, "read_manifest", lambda _d: next(readings))
    got = run_main(monkeypatch, capsys, {"state": "verified", "archive_dir": str(adir)})
    assert (got["rc"], got["verified"], got["left"]) == (0, {str(store7): sha7}, {}), got


@pytest.mark.parametrize("state", ["verified", "restored"])
def test_main_binds_to_the_directory_only_where_it_reads_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        state: str) -> None:
    """verified and restored look at the archives and stores only: no root SASL bind over
    ldapi on every lifecycle run, and no `dn` asked of a verified item; purged does bind."""
    vmail, adir = tmp_path / "vmail", tmp_path / "archives"
    store = by_id_store(vmail, 7, "1.seven", datetime(2026, 1, 1, tzinfo=UTC).timestamp())
    connects: list[str] = []
    item = {"address": HOA, "store": str(store)} if state == "verified" else {"address": HOA}
    args = {"state": state, "archive_dir": str(adir), "mailboxes": [item]}
    if state == "restored":
        args["dest"] = str(tmp_path / "dest")
    got = run_main(monkeypatch, capsys, args, connects=connects)
    assert connects == [], connects
    if state == "verified":  # the item without a dn is checked, not refused
        assert got["rc"] == 0, got
        assert got["left"] == {HOA: got["left"][HOA]} and "no archive" in got["left"][HOA]
    purge = {"state": "purged", "archive_dir": str(adir),
             "mailboxes": [{**item, "store": str(store), "dn": "uid=x," + BASE}]}
    run_main(monkeypatch, capsys, purge, connects=connects)
    assert connects == ["ldapi:///"]
