"""The outbound rate limit's decision logic (roles/ratelimit, mailgov_ratelimit.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

_PATH = (Path(__file__).resolve().parents[2]
         / "roles/ratelimit/files/usr/local/lib/mailgov/mailgov_ratelimit.py")
_spec = importlib.util.spec_from_file_location("mailgov_ratelimit", _PATH)
assert _spec and _spec.loader
rl = importlib.util.module_from_spec(_spec)
sys.modules["mailgov_ratelimit"] = rl
_spec.loader.exec_module(rl)

DOMAIN = "monre.gov.vn"


def req(user: str, rcpt: str, instance: str) -> dict[str, str]:
    return {"request": "smtpd_access_policy", "protocol_state": "RCPT",
            "sasl_username": user, "recipient": rcpt, "instance": instance,
            "client_address": "10.0.0.5", "sender": user}


def limiter(messages: int = 3, minutes: float = 10) -> Any:
    return rl.RateLimiter(messages, minutes * 60, (DOMAIN,))


def test_allows_n_outside_messages_then_refuses_and_locks_once() -> None:
    lim = limiter(3)
    for i in range(3):
        d = lim.check(req("a@monre.gov.vn", "x@example.org", f"m{i}"), now=100 + i)
        assert d.action == "DUNNO" and not d.lock and d.count == i + 1
    d = lim.check(req("a@monre.gov.vn", "x@example.org", "m3"), now=104)
    assert d.action.startswith("REJECT 5.7.1") and d.lock and d.count == 4
    assert "3 messages" in d.action and "10 minutes" in d.action
    # Locked: further attempts are refused without locking again.
    d = lim.check(req("a@monre.gov.vn", "y@example.org", "m4"), now=105)
    assert d.action.startswith("REJECT") and not d.lock


def test_local_and_unauthenticated_are_not_counted() -> None:
    lim = limiter(1)
    for i in range(5):
        assert lim.check(req("a@monre.gov.vn", f"u{i}@monre.gov.vn", f"m{i}"), i).action == "DUNNO"
        sub = req("a@monre.gov.vn", f"u{i}@sub.MONRE.gov.vn", f"n{i}")
        assert lim.check(sub, i).action == "DUNNO"
        assert lim.check(req("", "x@example.org", f"p{i}"), i).action == "DUNNO"
    assert lim.check(req("a@monre.gov.vn", "x@example.org", "q"), 10).count == 1
    # A look-alike domain is outside.
    assert lim.check(req("a@monre.gov.vn", "x@evilmonre.gov.vn", "r"), 11).lock


def test_one_message_many_outside_recipients_counts_once() -> None:
    lim = limiter(2)
    for rcpt in ("x@example.org", "y@example.org", "z@example.net"):
        assert lim.check(req("a@monre.gov.vn", rcpt, "same"), 1).action == "DUNNO"
    assert lim.check(req("a@monre.gov.vn", "x@example.org", "second"), 2).count == 2
    assert lim.check(req("a@monre.gov.vn", "x@example.org", "third"), 3).lock


def test_window_slides_and_users_are_separate() -> None:
    lim = limiter(2, minutes=1)
    assert lim.check(req("a@monre.gov.vn", "x@example.org", "1"), 0).count == 1
    assert lim.check(req("a@monre.gov.vn", "x@example.org", "2"), 30).count == 2
    assert lim.check(req("B@monre.gov.vn", "x@example.org", "3"), 31).count == 1  # other user
    # At t=60 the first message left the window: room for one more.
    d = lim.check(req("a@monre.gov.vn", "x@example.org", "4"), 60)
    assert d.action == "DUNNO" and d.count == 2
    assert lim.check(req("a@monre.gov.vn", "x@example.org", "5"), 61).lock


def test_reset_forgets_window_and_lock() -> None:
    lim = limiter(1)
    lim.check(req("a@monre.gov.vn", "x@example.org", "1"), 0)
    assert lim.check(req("a@monre.gov.vn", "x@example.org", "2"), 1).lock
    lim.reset("A@monre.gov.vn")
    assert lim.check(req("a@monre.gov.vn", "x@example.org", "3"), 2).action == "DUNNO"


def test_parse_request() -> None:
    r = rl.parse_request(["request=smtpd_access_policy", "sasl_username=a@b",
                          "recipient=x=y@z", "junk"])
    assert r == {"request": "smtpd_access_policy", "sasl_username": "a@b", "recipient": "x=y@z"}


@pytest.mark.parametrize("lock_fails", [False, True])
def test_service_locks_and_notifies_once(lock_fails: bool) -> None:
    config = {"messages": 1, "window_minutes": 5, "local_domains": [DOMAIN]}
    locked: list[str] = []
    notes: list[tuple[str, str]] = []

    def locker(_cfg: dict[str, Any], user: str, _when: Any) -> str:
        if lock_fails:
            raise RuntimeError("slapd down")
        locked.append(user)
        return f"mail={user},ou=people"

    def notifier(_cfg: dict[str, Any], user: str, _d: Any, outcome: str, _r: Any,
                 locked: bool = True) -> None:
        notes.append((user, outcome))

    svc = rl.Service(config, locker=locker, notifier=notifier)
    assert svc.handle(req("A@monre.gov.vn", "x@example.org", "1"), now=0) == "DUNNO"
    assert svc.handle(req("a@monre.gov.vn", "x@example.org", "2"), now=1).startswith("REJECT")
    assert svc.handle(req("a@monre.gov.vn", "x@example.org", "3"), now=2).startswith("REJECT")
    assert locked == ([] if lock_fails else ["a@monre.gov.vn"])
    assert len(notes) == 1 and notes[0][0] == "a@monre.gov.vn"
    assert notes[0][1].startswith("FAILED (slapd down)" if lock_fails else "locked mail=")


def test_administrator_is_refused_over_the_limit_but_never_locked() -> None:
    """ABUSE-06: the locker refuses (Protected); the service throttles and tells, once."""
    config = {"messages": 2, "window_minutes": 1, "local_domains": [DOMAIN]}
    notes: list[tuple[str, str, bool]] = []

    def locker(_cfg: dict[str, Any], user: str, _when: Any) -> str:
        raise rl.Protected(f"uid=x is an administrator ({user})")

    def notifier(_cfg: dict[str, Any], user: str, _d: Any, outcome: str, _r: Any,
                 locked: bool = True) -> None:
        notes.append((user, outcome, locked))

    svc = rl.Service(config, locker=locker, notifier=notifier)
    admin = "quantri@monre.gov.vn"
    assert svc.handle(req(admin, "x@example.org", "1"), now=0) == "DUNNO"
    assert svc.handle(req(admin, "x@example.org", "2"), now=1) == "DUNNO"
    third = svc.handle(req(admin, "x@example.org", "3"), now=2)
    assert third.startswith("REJECT 5.7.1") and "try again later" in third
    assert "locked" not in third
    assert svc.handle(req(admin, "x@example.org", "4"), now=3).endswith("try again later")
    assert notes == [(admin, "NOT locked: uid=x is an administrator (quantri@monre.gov.vn)",
                      False)]
    # Back under the limit (the window slid past the first two): accepted again, and a new
    # crossing is news again.
    assert svc.handle(req(admin, "x@example.org", "5"), now=61.5) == "DUNNO"
    assert svc.handle(req(admin, "x@example.org", "6"), now=61.6) == "DUNNO"
    assert svc.handle(req(admin, "x@example.org", "7"), now=61.7).startswith("REJECT")
    assert len(notes) == 2


def test_read_request_stops_at_garbage() -> None:
    import io

    good = io.BytesIO(b"request=smtpd_access_policy\nsasl_username=a\n\nrest")
    assert rl.read_request(good) == ["request=smtpd_access_policy", "sasl_username=a"]
    assert rl.read_request(io.BytesIO(b"no newline at the end")) is None
    assert rl.read_request(io.BytesIO(b"x" * 5000 + b"\n\n")) is None  # over MAX_LINE
    assert rl.read_request(io.BytesIO(b"a=b\n" * 200 + b"\n")) is None  # not Postfix


def test_peer_names_from_a_verified_certificate() -> None:
    cert = {"subject": ((("commonName", "mail2.monre.gov.vn"),),),
            "subjectAltName": (("DNS", "Mail2.monre.gov.vn"), ("DNS", "mail2"),
                               ("IP Address", "10.210.0.12"))}
    assert rl.peer_names(cert) == {"mail2.monre.gov.vn", "mail2"}
    assert rl.peer_names({"subject": ((("commonName", "Other"),),)}) == {"other"}
    assert rl.peer_names({}) == set()


def test_socket_is_postfix_only(tmp_path: Any) -> None:
    """The unix socket is created 0600 and owned by the configured account (ABUSE-04)."""
    import grp
    import os
    import pwd
    import stat

    me = pwd.getpwuid(os.getuid()).pw_name
    if grp.getgrgid(os.getgid()).gr_name != me:
        pytest.skip("needs a user whose group has its name")
    path = tmp_path / "policy.sock"
    path.write_text("stale")  # a leftover of a crash is replaced
    srv = rl._UnixServer({"unix_socket": str(path), "unix_owner": me}, rl._PolicyHandler)
    try:
        st = path.stat()
        assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
        assert st.st_uid == os.getuid()
    finally:
        srv.server_close()
