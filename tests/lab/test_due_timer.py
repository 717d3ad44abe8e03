"""The daily scheduled reconcile (issue 14 item 4): lab/systemd/mailgov-due.{service,timer}
installed on the lab's controller side (the `client` host, the lab's admin network) by
`lab/due-timer`, enabled with a next run; starting its service applies what became due.

A cancel dated today and one dated tomorrow are put into the timer's data copy; the timer's
service, started as the timer would start it, applies the one that became due (the address is
then refused with the cancelled-address text) and leaves the other for its day. Afterwards
the lab is reconciled back to the original data.

    MAILGOV_LAB_ID=N .venv/bin/python -m pytest -m lab tests/lab/test_due_timer.py
"""

from __future__ import annotations

import base64
import shlex
import shutil
import subprocess
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import DATA_FILE, LAB_DIR, REPO, Result, playbook
from test_reorganise import REASON, _plain_staff, _rcpt

from mailgov.loader import load

pytestmark = pytest.mark.lab

CONTROLLER = Path("/opt/mailgov")  # lab/due-timer's copy of this checkout on client
DUE_DATA = CONTROLLER / LAB_DIR.relative_to(REPO) / "due" / "mailboxes.yaml"  # its data


@pytest.fixture(scope="module")
def installed() -> str:
    """lab/due-timer, as the lab installs it: its one line ('... next run ...')."""
    res = subprocess.run([str(REPO / "lab" / "due-timer"), "--data", str(DATA_FILE)],
                         cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout


def _put_due_data(host_run: Callable[..., Result], text: str) -> None:
    b64 = base64.b64encode(text.encode("utf-8")).decode()
    res = host_run("client", f"echo {b64} | base64 -d > {shlex.quote(str(DUE_DATA))}")
    assert res.rc == 0, res.stderr


@pytest.fixture
def restore_original(host_run: Callable[..., Result]) -> Iterator[None]:
    yield
    _put_due_data(host_run, DATA_FILE.read_text(encoding="utf-8"))
    rc, _, out = playbook("reconcile.yml", DATA_FILE, *REASON)
    assert rc == 0, out[-3000:]


def test_timer_is_enabled_with_a_next_run(installed: str,
                                          host_run: Callable[..., Result]) -> None:
    assert "mailgov-due.timer enabled on client, next run " in installed, installed
    res = host_run("client", "systemctl is-enabled mailgov-due.timer; "
                             "systemctl is-active mailgov-due.timer; "
                             "systemctl show mailgov-due.timer -p NextElapseUSecRealtime --value")
    enabled, active, next_run = res.stdout.split("\n")[:3]
    assert (enabled, active) == ("enabled", "active"), res.stdout
    assert next_run.strip() and next_run.strip() != "n/a", res.stdout
    # the unit that runs is the repository's, with only the paths given by the drop-in
    link = host_run("client", "readlink /etc/systemd/system/mailgov-due.service "
                              "/etc/systemd/system/mailgov-due.timer")
    assert link.stdout.split() == [str(CONTROLLER / "lab/systemd" / u) for u in
                                   ("mailgov-due.service", "mailgov-due.timer")], link.stdout
    cat = host_run("client", "systemctl cat mailgov-due.service")
    assert "playbooks/reconcile.yml" in cat.stdout and f"MAILGOV_DATA={DUE_DATA}" in cat.stdout
    timer = host_run("client", "systemctl show mailgov-due.timer -p TimersCalendar --value")
    assert "00:15:00" in timer.stdout, timer.stdout  # daily, after midnight


def test_service_applies_what_became_due(installed: str, tmp_path: Path,
                                         host_run: Callable[..., Result],
                                         smtp: Callable[..., Any],
                                         restore_original: None) -> None:
    today = date.today()
    copy = tmp_path / "mailboxes.yaml"
    shutil.copy(DATA_FILE, copy)
    data = load(copy).data
    domain = data["organization"]["domain"]
    staff = _plain_staff(data, set())
    person, later = staff[3], staff[4]
    person.update(state="cancelled", cancelled={
        "date": today.isoformat(), "reason": "retired", "request": "95/QĐ-TCCB"})
    later.update(state="cancelled", cancelled={  # not yet due: the run must leave it
        "date": (today + timedelta(days=1)).isoformat(), "reason": "retired",
        "request": "94/QĐ-TCCB"})
    text = yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    copy.write_text(text, encoding="utf-8")
    address = f"{person['address']}@{domain}"
    for addr in (address, f"{later['address']}@{domain}"):
        code, reply = _rcpt(smtp, addr)
        assert code == 250, reply  # both open before the run

    # The timer's service, started as the timer starts it, on the same edit.
    _put_due_data(host_run, text)
    run = host_run("client", "systemctl start mailgov-due.service; "
                             "systemctl show mailgov-due.service -p Result --value", timeout=900)
    log = host_run("client", "journalctl -u mailgov-due.service -n 60 --no-pager -o cat")
    assert run.stdout.strip().splitlines()[-1:] == ["success"], run.stdout + log.stdout
    assert "failed=0" in log.stdout, log.stdout
    code, reply = _rcpt(smtp, address)
    assert code == 550 and "cancelled per regulation" in reply, reply
    # the cancel dated tomorrow was listed as scheduled and left for its day
    assert "Scheduled" in log.stdout or "scheduled" in log.stdout, log.stdout
    code, reply = _rcpt(smtp, f"{later['address']}@{domain}")
    assert code == 250, reply
