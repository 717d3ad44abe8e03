"""Faults during a reconcile, on the lab's real slapd (issue 4, item 8).

- an unreachable server: a clear one-line error, nothing changed;
- the reconcile lock: a second apply fails cleanly naming the holder, or waits for it; two
  applies started together do not interleave (both succeed, the data is applied once);
- slapd SIGKILLed in the middle of a large apply (2,000 generated mailboxes; the kill point is
  seeded and printed): the apply fails saying to re-run, some writes are there and some are
  missing; after a restart, re-running converges with nothing lost (live compared to desired).

    MAILGOV_LAB_ID=N .venv/bin/python -m pytest -m lab tests/lab/test_reconcile_faults.py

Bounded: about two minutes on the lab. Each test leaves the lab holding data/mailboxes.yaml.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest
import yaml
from conftest import DATA_FILE, LabHost, Result
from test_reconcile_lab import (
    PLAYBOOK,
    REPO,
    Live,
    Run,
    _edit,
    data_copy,
    lab_live,
    remove_undesired,
    run_reconcile,
)

from mailgov.directory import desired_entries
from mailgov.loader import load
from mailgov.lock import ReconcileLock
from mailgov.plan import normalise_dn, plan
from mailgov.validate import validate

pytestmark = pytest.mark.lab

GENERATED = 2000
SEED = 11


@pytest.fixture(scope="session")
def live(lab_hosts: dict[str, LabHost], lab_ca: Path) -> Live:
    return lab_live(lab_hosts, lab_ca)


def ldap_changes(live: Live, data_file: Path) -> list[str]:
    p = live.plan(data_file, allow_mass_change=True)
    return [f"{c.kind} {c.dn}" for c in p.changes if c.kind != "archive"]


@pytest.fixture
def back_to_data(live: Live) -> Iterator[None]:
    yield
    kill_orphans()  # before restoring, or a leftover apply would write on
    remove_undesired(live, DATA_FILE)
    res = run_reconcile(DATA_FILE, "-e", "mailgov_allow_mass_change=true")
    assert res.rc == 0, res.out[-3000:]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The lab's data plus 2,000 generated mailboxes (new ids, addresses prefixed "g.", spread
    over the lab's units): a large apply that adds to the directory. Replacing the directory's
    people by other records would be refused (MG603/MG604: records do not vanish)."""
    folder = tmp_path_factory.mktemp("gen")
    raw = folder / "raw.yaml"
    subprocess.run([sys.executable, "-m", "tools.generate", "--count", str(GENERATED),
                    "--seed", str(SEED), "-o", str(raw)], check=True, cwd=REPO)
    data = load(DATA_FILE).data
    units = [u["id"] for u in data["units"]]
    next_id = max(m["id"] for m in data["mailboxes"]) + 1
    keep = ("name", "kind", "title", "state", "suspended", "cancelled", "created", "request",
            "quota_mb")
    for i, m in enumerate(load(raw).data["mailboxes"][:GENERATED]):
        record = {k: m[k] for k in keep if k in m}
        unit = units[i % len(units)]
        record.update(address=f"g.{m['address']}", id=next_id + i, unit=unit,
                      naming_exemption={"reason": "lab fault test", "request": "99/QĐ-TEST"})
        if record.get("kind") == "affiliate":
            record["sponsor"] = unit
        data["mailboxes"].append(record)
    path = folder / "generated.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


_RUNNING: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_orphans() -> Iterator[None]:
    """A failed test must not leave a playbook writing into the lab behind it."""
    yield
    kill_orphans()


def kill_orphans() -> None:
    while _RUNNING:
        proc = _RUNNING.pop()
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


class Background:
    """ansible-playbook reconcile.yml running in the background, its output in a file (a pipe
    nobody reads would fill up and block the playbook)."""

    def __init__(self, data_file: Path, *args: str) -> None:
        cmd = [str(REPO / ".venv" / "bin" / "ansible-playbook"), str(PLAYBOOK),
               "-e", f"mailgov_data_file={data_file}", "-e", "mailgov_allow_mass_change=true",
               *args]
        env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "PYTHONUNBUFFERED": "1"}
        fd, name = tempfile.mkstemp(prefix="reconcile-", suffix=".log")
        os.close(fd)
        self.path = Path(name)
        # Appending: the playbook writes, the test reads the file by name with its own offset.
        with open(self.path, "a", encoding="utf-8") as out:
            self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
                                         text=True, env=env)
        _RUNNING.append(self.proc)

    def output(self) -> str:
        return self.path.read_text(encoding="utf-8", errors="replace")

    def poll(self) -> int | None:
        return self.proc.poll()

    def wait(self, timeout: float) -> tuple[int, str]:
        rc = self.proc.wait(timeout=timeout)
        out = self.output()
        self.path.unlink(missing_ok=True)
        return rc, out


def lock_present(live: Live) -> bool:
    conn = live.connect()
    try:
        return bool(conn.search(f"cn=reconcile-lock,ou=services,{live.base_dn}",
                                "(objectClass=*)", "BASE", attributes=["cn"]))
    finally:
        conn.unbind()


def wait_for(cond: Callable[[], bool], timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def test_unreachable_server_is_a_clear_error_and_changes_nothing(
        live: Live, tmp_path: Path, lab_hosts: dict[str, LabHost]) -> None:
    copy = data_copy(tmp_path, _edit)
    before = live.read()
    t = time.monotonic()
    res = run_reconcile(copy, "-e", f"mailgov_ldap_uri=ldap://{lab_hosts['mail1'].addr}:1")
    assert res.rc != 0
    assert time.monotonic() - t < 60
    assert "Traceback" not in res.out
    assert "nothing was changed" in res.out, res.out[-2000:]
    assert live.read() == before


def test_held_lock_fails_cleanly_then_waits(live: Live, tmp_path: Path,
                                            back_to_data: None) -> None:
    copy = data_copy(tmp_path, _edit)
    before = live.read()
    conn = live.connect()
    lock = ReconcileLock(conn, live.base_dn, owner=f"pytest pid {os.getpid()}")
    lock.acquire()
    try:
        refused: Run = run_reconcile(copy, "-e", "mailgov_lock_wait=0")
        assert refused.rc != 0
        assert "another apply is running (owner pytest pid" in refused.out, refused.out[-2000:]
        assert "Traceback" not in refused.out
        assert live.read() == before  # nothing was written
        # A waiting apply goes ahead once the lock is released.
        waiting = Background(copy, "-e", "mailgov_lock_wait=300")
        # It plans, then waits for the lock: release it once it is waiting (or has failed).
        wait_for(lambda: waiting.poll() is not None or _waiting_for_lock(waiting), 240,
                 "the second apply to reach the lock")
        time.sleep(15)  # validate, read and plan again, then wait on the lock
        assert waiting.poll() is None, waiting.wait(1)[1][-2000:]
        assert live.read() == before  # still waiting: nothing written
        lock.release()
        rc, out = waiting.wait(timeout=300)
        assert rc == 0, out[-3000:]
    finally:
        lock.release()
        conn.unbind()
    assert ldap_changes(live, copy) == []


def test_two_applies_at_once_do_not_interleave(live: Live, generated: Path,
                                               back_to_data: None) -> None:
    assert len(ldap_changes(live, generated)) > GENERATED // 2  # a large apply to race
    a = Background(generated, "-e", "mailgov_lock_wait=400")
    b = Background(generated, "-e", "mailgov_lock_wait=400")
    rc_a, out_a = a.wait(timeout=500)
    rc_b, out_b = b.wait(timeout=500)
    # Interleaved writes would have failed with entryAlreadyExists / noSuchAttribute.
    assert rc_a == 0, out_a[-3000:]
    assert rc_b == 0, out_b[-3000:]
    assert ldap_changes(live, generated) == []
    # One of them did the work; the other planned again under the lock and found nothing.
    creates = [o for o in (out_a, out_b) if "Make the mailboxes match the data" in o
               and "changed: [localhost]" in o.split("Make the mailboxes match the data")[1]
               .split("TASK")[0]]
    assert len(creates) == 1, (out_a[-1500:], out_b[-1500:])


def test_slapd_killed_during_apply_then_rerun_converges(
        live: Live, generated: Path, back_to_data: None,
        host_run: Callable[..., Result]) -> None:
    # What must exist: what the planner creates from nothing (a cancelled mailbox past its
    # retention is never created: absent means purged).
    gen = validate(generated).directory
    assert gen is not None
    creates = {normalise_dn(c.dn) for c in plan(gen, {}, today=date.today(),
                                                  allow_mass_change=True).changes
               if c.kind == "create"}
    desired = {normalise_dn(e.dn): e for e in desired_entries(load(generated).data)
               if normalise_dn(e.dn) in creates}
    assert len(desired) > GENERATED // 2

    def present() -> int:
        return len(desired.keys() & live.read().keys())

    baseline = present()
    assert baseline < len(desired) - 1000, "the generated entries are there already"
    # The kill point: after this many of the apply's writes (seeded, so a failure replays).
    rng = random.Random(SEED)
    after = rng.randint(50, 400)
    print(f"slapd is killed once {after} of {len(desired) - baseline} creates are seen")
    proc = Background(generated, "-e", "mailgov_lock_wait=60")
    wait_for(lambda: present() >= baseline + after or proc.poll() is not None, 300,
             f"{after} writes of the apply")
    assert proc.poll() is None, "the apply ended before the kill: " + proc.output()[-2000:]
    killed = host_run("mail1", "systemctl kill --signal=SIGKILL slapd")
    assert killed.rc == 0, killed.stderr
    rc, out = proc.wait(timeout=300)
    started = host_run("mail1", "systemctl restart slapd && systemctl is-active slapd")
    assert started.rc == 0, started.stdout + started.stderr
    wait_for(lambda: _reachable(live), 30, "slapd back")
    # Interrupted, and said so: some writes made it, others are missing.
    assert rc != 0, out[-2000:]
    assert "Traceback" not in out
    assert "re-run" in out.lower(), out[-2000:]
    seen = present()
    assert baseline + after <= seen < len(desired), (baseline, after, seen, len(desired))
    final = run_reconcile(generated, "-e", "mailgov_allow_mass_change=true",
                          "-e", "mailgov_lock_wait=60")
    assert final.rc == 0, final.out[-3000:]
    # Nothing lost: every desired entry is there with the desired values of what it carries.
    state = live.read()
    missing = [dn for dn in desired if dn not in state]
    assert missing == [], missing[:10]
    for dn, entry in desired.items():
        got = {k.lower(): v for k, v in state[dn].items()}
        for attr in ("mail", "mailEnabled", "mailQuota"):
            if attr in entry.attributes:
                assert sorted(v.lower() for v in got.get(attr.lower(), ())) == \
                    sorted(v.lower() for v in entry.attributes[attr]), (dn, attr)
    assert ldap_changes(live, generated) == []


def _waiting_for_lock(bg: Background) -> bool:
    """The playbook has shown the plan: the mailboxes task (which takes the lock) is next.

    Task banners are printed with the task's first result (display_skipped_hosts=False), so
    the mailboxes task's own banner cannot tell that it has started.
    """
    return "TASK [Show the plan]" in bg.output()


def _reachable(target: Live) -> bool:
    try:
        target.connect().unbind()
        return True
    except Exception:
        return False
