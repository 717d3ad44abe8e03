"""Reorganising without losing mail, proven on the lab with real SMTP (issue 14 item 7).

One edit of a COPY of the data, as a merger's pull request would make it: a unit merged into
another (`mailgov unit merge`), a person renamed twice, a person whose old address's alias
period is over, and a cancel dated tomorrow. The real playbook applies it; mail sent from
outside over port 25 shows who receives what; a second run planned as of tomorrow (the
planner's `--today`, `-e mailgov_today`) applies the dated cancel. Afterwards the lab is
reconciled back to the original data.

    MAILGOV_LAB_ID=N .venv/bin/python -m pytest -m lab tests/lab/test_reorganise.py

The whole-domain migration with real clients (new virtual domains, a DKIM key per domain,
DKIM verification with the new domain's key) is tests/lab/test_domain_migration.py.
"""

from __future__ import annotations

import shlex
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import DATA_FILE, Result, playbook

from mailgov.edit import unit_merge
from mailgov.loader import load

pytestmark = pytest.mark.lab

OUTSIDE = "tester@example.org"
REASON = ["-e", "mailgov_allow_mass_change=true",
          "-e", "mailgov_override_reason=lab proof of issue 14"]


@pytest.fixture
def restore_original() -> Iterator[None]:
    yield
    rc, _, out = playbook("reconcile.yml", DATA_FILE, *REASON)
    assert rc == 0, out[-3000:]


def _rcpt(smtp: Callable[..., Any], rcpt: str) -> tuple[int, str]:
    with smtp("mail1", 25) as s:
        s.ehlo()
        assert s.mail(OUTSIDE)[0] == 250
        code, text = s.rcpt(rcpt)
        return code, text.decode("utf-8", "replace")


def _send(smtp: Callable[..., Any], rcpt: str, token: str) -> None:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = OUTSIDE, rcpt, token
    msg.set_content("issue 14 lab proof\n")
    with smtp("mail1", 25) as s:
        s.sendmail(OUTSIDE, [rcpt], msg.as_bytes())


def _delivered(host_run: Callable[..., Result], mailbox: str, token: str,
               deadline: float = 60) -> bool:
    """Whether ``mailbox``'s INBOX holds a message with subject ``token`` (polled)."""
    end = time.monotonic() + deadline
    while True:
        res = host_run("mail1", f"doveadm search -u {shlex.quote(mailbox)} mailbox INBOX "
                                f"header subject {shlex.quote(token)}")
        if res.rc == 0 and res.stdout.strip():
            return True
        if time.monotonic() > end:
            return False
        time.sleep(1)


def _plain_staff(data: dict[str, Any], taken: set[str]) -> list[dict[str, Any]]:
    """Active personal staff, not heads, delegates or holders of protected aliases."""
    busy = set(taken)
    for u in data["units"]:
        busy.add(u.get("head", ""))
        busy.update((u.get("mailbox") or {}).get("delegates", []))
    protected = set(data["policy"]["protected"])
    return [m for m in data["mailboxes"]
            if m.get("state", "active") == "active" and m.get("kind", "personal") == "personal"
            and m.get("role", "staff") == "staff" and m["address"] not in busy
            and not protected & set(m.get("aliases", []))]


def test_merger_renames_and_a_dated_cancel_lose_no_mail(
        tmp_path: Path, host_run: Callable[..., Result], smtp: Callable[..., Any],
        restore_original: None) -> None:
    today = date.today()
    copy = tmp_path / "mailboxes.yaml"
    shutil.copy(DATA_FILE, copy)
    data = load(copy).data
    domain = data["organization"]["domain"]
    units = {u["id"]: u for u in data["units"]}
    # The merger: a top-level unit without sub-units, people or delegates that matter, into
    # the ministry office.
    parents = {u.get("parent") for u in data["units"]}
    src = next(u["id"] for u in data["units"] if u["id"] not in parents
               and u.get("parent") is None and u["id"] not in ("vpb", data["organization"]
                                                                ["it_unit"]))
    dst = "vpb" if "vpb" in units else next(u for u in units if u != src)
    unit_merge(copy, src, dst, request="5/QĐ-BNNMT", on=today)
    data = load(copy).data
    people = _plain_staff(data, set())
    twice, expired, dated = people[0], people[1], people[2]
    a0 = twice["address"]
    twice.update(address=f"{a0}.moi2", naming_exemption={
        "reason": "Thử nghiệm đổi tên", "request": "99/QĐ-TCCB"}, renamed_from=[
        f"{a0}.moi1", {"address": a0, "date": (today - timedelta(days=2)).isoformat(),
                       "request": "98/QĐ-TCCB"}])
    e0 = expired["address"]
    expired.update(address=f"{e0}.moi", naming_exemption={
        "reason": "Thử nghiệm đổi tên", "request": "99/QĐ-TCCB"}, renamed_from=[
        {"address": e0, "date": (today - timedelta(days=400)).isoformat(),
         "request": "97/QĐ-TCCB"}])
    data["policy"]["history"] = {"alias_days": 365}
    tomorrow = today + timedelta(days=1)
    dated.update(state="cancelled", cancelled={
        "date": tomorrow.isoformat(), "reason": "retired", "request": "96/QĐ-TCCB"})
    copy.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")

    rc, _, out = playbook("reconcile.yml", copy, *REASON)
    assert rc == 0, out[-3000:]

    # a person renamed twice receives at all three addresses, in one mailbox
    new = f"{a0}.moi2@{domain}"
    for addr in (new, f"{a0}.moi1@{domain}", f"{a0}@{domain}"):
        token = f"twice-{uuid.uuid4().hex[:10]}"
        _send(smtp, addr, token)
        assert _delivered(host_run, new, token), f"{addr} did not reach {new}"
    # the merged unit's old address reaches the successor's unit mailbox (and its own store
    # keeps its mail); its old list reaches the successor's people
    token = f"merged-{uuid.uuid4().hex[:10]}"
    _send(smtp, f"{src}@{domain}", token)
    assert _delivered(host_run, f"{dst}@{domain}", token)
    head = units[dst].get("head")
    if head:
        token = f"list-{uuid.uuid4().hex[:10]}"
        _send(smtp, f"{src}-all@{domain}", token)
        assert _delivered(host_run, f"{head}@{domain}", token)
    # the alias period of a previous address is over: refused as closed, never unknown
    code, text = _rcpt(smtp, f"{e0}@{domain}")
    assert code == 550 and "5.1.1" in text and "cancelled per regulation" in text, text
    # the cancel dated tomorrow did nothing today ...
    code, text = _rcpt(smtp, f"{dated['address']}@{domain}")
    assert code == 250, text

    # ... and applies on its day (the planner's date moved, not the clock)
    rc, _, out = playbook("reconcile.yml", copy, *REASON, "-e",
                          f"mailgov_today={tomorrow.isoformat()}", "-e",
                          "mailgov_today_max_ahead_days=1")
    assert rc == 0, out[-3000:]
    code, text = _rcpt(smtp, f"{dated['address']}@{domain}")
    assert code == 550 and "cancelled per regulation" in text, text
