# ruff: noqa: E501 (log lines as the servers write them are longer than 100 characters)
"""Collection (issue 17 item 1), the pure parts: what the host module reads, how the
controller merges hosts and carries earlier days, and how a missing host becomes a gap.

The log lines are in the form Debian 12's rsyslog writes them for Dovecot 2.3 and Postfix 3.7
(the lab proof, tests/lab/test_usage.py, reads the real ones).
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from mailgov import collect, usage, usage_sources

D = "monre.gov.vn"
LOG = """\
2026-12-06T08:00:01.123456+00:00 mail1 dovecot: imap-login: Login: user=<natuan@monre.gov.vn>, method=PLAIN, rip=10.210.0.21, lip=10.210.0.11, mpid=100, TLS, session=<a>
2026-12-06T08:05:00.000000+07:00 mail1 dovecot: pop3-login: Login: user=<ptminh@monre.gov.vn>, method=PLAIN, rip=10.210.0.21, lip=10.210.0.11, mpid=101, TLS, session=<b>
2026-12-06T09:00:00.5+00:00 mail1 postfix/submission/smtpd[200]: 4ABC12: client=client.lab[10.210.0.21], sasl_method=PLAIN, sasl_username=natuan@monre.gov.vn
2026-12-06T09:00:01+00:00 mail1 postfix/submission/smtpd[200]: 4ABC13: client=client.lab[10.210.0.21], sasl_method=PLAIN, sasl_username=natuan@monre.gov.vn
2026-12-06T09:00:02+00:00 mail1 postfix/lmtp[300]: 4ABC12: to=<ptminh@monre.gov.vn>, relay=mail1.monre.gov.vn[private/dovecot-lmtp], delay=0.1, delays=0/0/0/0.1, dsn=2.0.0, status=sent (250 2.0.0 <ptminh@monre.gov.vn> x Saved)
2026-12-06T09:00:03+00:00 mail1 postfix/lmtp[300]: 4ABC14: to=<ptminh@monre.gov.vn>, orig_to=<minh.pt@monre.gov.vn>, relay=mail1.monre.gov.vn[private/dovecot-lmtp], delay=0.1, delays=0/0/0/0.1, dsn=4.2.2, status=deferred (452 4.2.2 Mailbox is full)
2026-12-06T09:00:04+00:00 mail1 postfix/smtp[301]: 4ABC13: to=<x@mard.gov.vn>, relay=mx.mard.gov.vn[1.2.3.4]:25, delay=1, dsn=2.0.0, status=sent (250 ok)
2026-12-06T10:00:00.590236+00:00 mail1 dovecot: imap(ntbthao@monre.gov.vn)<17797><mFhdHANiBN8K0gYB>: flag_change: box=shared/vpb@monre.gov.vn/INBOX, uid=1, msgid=<m@x>
2026-12-06T10:00:01+00:00 mail1 dovecot: imap(ntbthao@monre.gov.vn)<400><c>: flag_change: box=INBOX, uid=7, msgid=<n@x>
2026-12-06T11:00:00+00:00 mail1 mailgov-ratelimit[500]: rate limit: nvquan@monre.gov.vn exceeded 250 messages in 10 min: locked uid=nvquan,ou=people,dc=monre,dc=gov,dc=vn
2026-12-06T12:00:00+00:00 mail1 dovecot: lmtp(natuan@monre.gov.vn)<600><d>: msgid=<z@x>: saved mail to INBOX
2026-12-06T12:00:01+00:00 mail1 dovecot: imap-login: Login: user=<cn=mailgov,ou=services>, method=PLAIN
2026-12-06T12:00:02+00:00 mail1 dovecot: imap-login: Login: user=<someone@other.vn>, method=PLAIN
2026-12-05T23:59:59+00:00 mail1 postfix/submission/smtpd[200]: 4ABC10: client=x, sasl_method=PLAIN, sasl_username=natuan@monre.gov.vn
Dec  7 07:00:00 mail2 dovecot: imap-login: Login: user=<ntlan@monre.gov.vn>, method=PLAIN, rip=10.210.0.21
"""


def read(first: str = "2026-12-06", last: str = "2026-12-07") -> dict[str, Any]:
    a = usage_sources.Activity()
    usage_sources.read_log(LOG.splitlines(), D, date.fromisoformat(first),
                           date.fromisoformat(last), a)
    return a.as_json()


def test_log_lines_counted() -> None:
    a = read()
    assert a["natuan"]["login_days"] == ["2026-12-06"]
    assert a["natuan"]["sent"] == {"2026-12-06": 2}  # 12-05 is before the first day read
    # The LMTP delivery to natuan (Dovecot's "saved mail") is no login and no count here.
    assert a["natuan"]["received"] == {}
    assert a["ptminh"]["received"] == {"2026-12-06": 1}  # the deferred one did not arrive
    # +07:00 is 01:05 UTC: still 12-06.
    assert a["ptminh"]["login_days"] == ["2026-12-06"]
    assert a["vpb"]["read_days"] == ["2026-12-06"]  # a delegate read the unit mailbox
    assert "ntbthao" not in a  # a delegate's own INBOX: not the unit mailbox
    assert a["nvquan"]["lock_events"] == ["2026-12-06T11:00:00Z"]
    assert a["ntlan"]["login_days"] == ["2026-12-07"]  # traditional syslog line, year given
    assert set(a) == {"natuan", "ptminh", "vpb", "nvquan", "ntlan"}
    assert a["natuan"]["last_login"] == 1796544001  # 2026-12-06T08:00:01Z


def test_other_domains_and_service_accounts_ignored() -> None:
    assert "someone" not in read() and not any("cn=" in k for k in read())


def test_last_login_dict_and_quota() -> None:
    text = ("shared/last-login/natuan@monre.gov.vn\n1796544001\n"
            "last-login/ptminh@monre.gov.vn\n1796000000\n"
            "shared/last-login/x@other.vn\n1\nshared/acl/whatever\nvalue\n")
    assert usage_sources.parse_last_login_dict(text, D) == {"natuan": 1796544001,
                                                            "ptminh": 1796000000}
    quota = ("Username\tQuota name\tType\tValue\tLimit\t%\n"
             "natuan@monre.gov.vn\tUser quota\tSTORAGE\t1024\t2097152\t0\n"
             "natuan@monre.gov.vn\tUser quota\tMESSAGE\t3\t-\t0\n"
             "vpb@monre.gov.vn\tUser quota\tSTORAGE\t0\t-\t0\n")
    assert usage_sources.parse_quota(quota, D) == {"natuan": (1024, 2097152), "vpb": (0, None)}
    with pytest.raises(ValueError, match="unexpected header"):
        usage_sources.parse_quota("User\tQuota\n", D)


def test_collect_host_reports_a_broken_source_and_reads_the_rest(tmp_path: Path) -> None:
    log = tmp_path / "mail.log"
    log.write_text(LOG)
    unreadable = tmp_path / "mail.log.1"
    unreadable.mkdir()  # a directory where a file was expected: not a file, skipped by glob
    def broken() -> Any:
        raise OSError("cannot bind to ldapi:/// as root")
    res = usage_sources.collect_host({
        "domain": D, "first": "2026-12-06", "last": "2026-12-07",
        "log_files": [str(tmp_path / "mail.log*")], "last_login_dict": str(tmp_path / "none"),
        "quota": True, "doveadm": str(tmp_path / "no-doveadm"), "base_dn": "dc=x",
        "connect": broken})
    assert res["activity"]["natuan"]["sent"] == {"2026-12-06": 2}
    assert any(e.startswith("doveadm quota get -A: ") for e in res["errors"]), res["errors"]
    assert "directory: cannot bind to ldapi:/// as root" in res["errors"]
    assert res["last_login"] == {}  # absent dict: nobody logged in yet, not an error
    dest = tmp_path / "facts.json"
    usage_sources.write_result(res, str(dest))
    assert dest.stat().st_mode & 0o777 == 0o600
    assert json.loads(dest.read_text())["version"] == 1


def host(activity: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"version": 1, "first": "2026-12-06", "last": "2026-12-07", "errors": [],
            "sources": ["x"], "activity": activity, "last_login": {}, "quota": {},
            "directory": {}, "published_units": [], **extra}


def test_merge_hosts_and_gaps() -> None:
    a1 = read()
    a2 = {"natuan": {"login_days": ["2026-12-07"], "read_days": [], "sent": {"2026-12-06": 1},
                     "received": {}, "lock_events": [], "last_login": 1796601600}}
    doc = collect.merge(
        {"mail1": host(a1, quota={"natuan": [1024, 2097152]},
                       directory={"pmhieu": {"pwd_last_success": None,
                                             "initial_unchanged": True,
                                             "password_since": "2026-11-20", "locked": False,
                                             "locked_at": None}},
                       published_units=["vpb"]),
         "mail2": host(a2, last_login={"ntlan": 1796630500}),
         "mail3": "unreachable: Failed to connect to the host via ssh"},
        date(2026, 12, 7), D, None, [], collected_at="2026-12-07T01:00:00Z")
    snap = usage.parse(doc)  # the merged document is a valid snapshot
    natuan = snap.mailboxes["natuan"]
    assert natuan.sent == {date(2026, 12, 6): 3}  # both hosts' submissions add up
    assert natuan.login_days == {date(2026, 12, 6), date(2026, 12, 7)}
    assert doc["mailboxes"]["natuan"]["last_login"] == "2026-12-07T00:00:00Z"
    assert (natuan.storage_kib, natuan.quota_kib) == (1024, 2097152)
    assert snap.mailboxes["pmhieu"].initial_unchanged
    assert snap.mailboxes["pmhieu"].initial_since == date(2026, 11, 20)
    assert snap.published_units == {"vpb"}
    assert snap.gaps == ["mail3: unreachable: Failed to connect to the host via ssh"]
    assert doc["hosts"]["mail1"]["ok"] and doc["hosts"]["mail2"]["ok"]


def test_merge_carries_earlier_days_and_drops_beyond_180() -> None:
    prev = usage.parse({
        "format": usage.FORMAT, "version": 1, "organization": {"domain": D},
        "date": "2026-12-05", "mailboxes": {
            "natuan": {"last_login": "2026-12-05T10:00:00Z",
                       "login_days": ["2026-06-10", "2026-06-11", "2026-12-05"],
                       "sent": {"2026-06-10": 9, "2026-06-11": 8, "2026-12-05": 4},
                       "received": {}}}})
    doc = collect.merge({"mail1": host(read())}, date(2026, 12, 7), D, prev, [])
    n = doc["mailboxes"]["natuan"]
    # 180 days up to 12-07 start on 06-11: 06-10 falls out, 06-11 stays.
    assert n["login_days"] == ["2026-06-11", "2026-12-05", "2026-12-06"]
    assert n["sent"] == {"2026-06-11": 8, "2026-12-05": 4, "2026-12-06": 2}
    assert n["last_login"] == "2026-12-06T08:00:01Z"


def test_a_failed_host_keeps_its_reason(tmp_path: Path) -> None:
    (tmp_path / "mail1.json").write_text(json.dumps(host({})))
    (tmp_path / "mail2.json").write_text("{")
    got = collect.read_results(tmp_path, ["mail1", "mail2", "mail3", "mail4"],
                               {"mail4": "unreachable: timed out"})
    assert isinstance(got["mail1"], dict)
    assert str(got["mail2"]).startswith("unreadable result: ")
    assert got["mail3"] == "no result (the play did not reach the host)"
    assert got["mail4"] == "unreachable: timed out"


def test_outcomes_from_the_status_files(tmp_path: Path) -> None:
    (tmp_path / "mail1.status.json").write_text('{"unreachable": false, "ok": true, "msg": ""}')
    (tmp_path / "mail2.status.json").write_text(json.dumps({
        "unreachable": True, "ok": False,
        "msg": "Failed to connect to the host via ssh: ssh: connect to host 10.210.6.99 "
               "port 22: Connection timed out\r\n"}))
    (tmp_path / "mail3.status.json").write_text(json.dumps({
        "unreachable": False, "ok": False, "msg": "usage facts: boom"}))
    (tmp_path / "mail1.json").write_text("{}")  # a result file is not a status
    hosts, why = collect.outcomes(tmp_path)
    assert hosts == ["mail1", "mail2", "mail3"]
    assert why == {"mail2": "unreachable: Failed to connect to the host via ssh: ssh: connect "
                            "to host 10.210.6.99 port 22: Connection timed out",
                   "mail3": "failed: usage facts: boom"}


# --------------------------------------------------------------------------- mailgov collect

DATA = Path(__file__).resolve().parents[1] / "data" / "usage" / "data.yaml"


def test_collect_bad_input_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from mailgov.cli import main

    def never(*_: Any) -> Any:
        raise AssertionError("no playbook may run on bad input")

    monkeypatch.setattr(collect, "run_playbook", never)
    for argv, message in (
        (["--snapshot-dir", str(tmp_path / "none")], "not a writable folder"),
        (["--snapshot-dir", str(tmp_path), "--day", "2999-01-01"], "is in the future"),
    ):
        assert main(["collect", str(DATA), *argv]) == 2
        assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_collect_writes_the_snapshot_with_the_gap_and_prunes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from mailgov.cli import main

    def fake(raw: Path, first: date, last: date, extra: list[str]
             ) -> tuple[list[str], dict[str, str]]:
        assert (first, last) == (date(2026, 6, 11), date(2026, 12, 7))
        assert extra == ["--limit", "mail1,mail2"]
        (raw / "mail1.json").write_text(json.dumps(host(read())))
        return ["mail1", "mail2"], {"mail2": "unreachable: No route to host"}

    monkeypatch.setattr(collect, "run_playbook", fake)
    old = tmp_path / "usage-2025-10-01.json"  # beyond the 400 days: --prune removes it
    old.write_text(json.dumps({"format": usage.FORMAT, "version": 1, "date": "2025-10-01",
                               "organization": {"domain": D}, "mailboxes": {}}))
    code = main(["collect", str(DATA), "--snapshot-dir", str(tmp_path), "--day", "2026-12-07",
                 "--prune", "--ansible-args", "--limit mail1,mail2"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "mailgov: warning: not collected: mail2: unreachable: No route to host" in err
    snap = usage.load(tmp_path / "usage-2026-12-07.json")
    assert snap.mailboxes["natuan"].sent == {date(2026, 12, 6): 2}
    assert snap.gaps == ["mail2: unreachable: No route to host"]
    assert not old.exists() and f"removed {old}" in err
