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

    def notifier(_cfg: dict[str, Any], user: str, _d: Any, outcome: str, _r: Any) -> None:
        notes.append((user, outcome))

    svc = rl.Service(config, locker=locker, notifier=notifier)
    assert svc.handle(req("A@monre.gov.vn", "x@example.org", "1"), now=0) == "DUNNO"
    assert svc.handle(req("a@monre.gov.vn", "x@example.org", "2"), now=1).startswith("REJECT")
    assert svc.handle(req("a@monre.gov.vn", "x@example.org", "3"), now=2).startswith("REJECT")
    assert locked == ([] if lock_fails else ["a@monre.gov.vn"])
    assert len(notes) == 1 and notes[0][0] == "a@monre.gov.vn"
    assert notes[0][1].startswith("FAILED (slapd down)" if lock_fails else "locked mail=")
