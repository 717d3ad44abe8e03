"""Faults during a reconcile, on the lab's real slapd (issue 4, item 8).

- an unreachable server: a clear one-line error, nothing changed;
- the reconcile lock: a second apply fails cleanly naming the holder, or waits for it; two
  applies started together do not interleave (both succeed, the data is applied once);
- slapd SIGKILLed at random points of a large apply (2,000 generated mailboxes): after a
  restart, re-running converges to the data with nothing lost (live compared to desired).

    MAILGOV_LAB_ID=N .venv/bin/python -m pytest -m lab tests/lab/test_reconcile_faults.py

Bounded: about two minutes on the lab. Each test leaves the lab holding data/mailboxes.yaml.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
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
from mailgov.plan import normalise_dn

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
    remove_undesired(live, DATA_FILE)
    res = run_reconcile(DATA_FILE, "-e", "mailgov_allow_mass_change=true")
    assert res.rc == 0, res.out[-3000:]


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2,000 generated mailboxes (units scaled to the size) in the lab's organization."""
    path = tmp_path_factory.mktemp("gen") / "generated.yaml"
    subprocess.run([sys.executable, "-m", "mailgov.generate", "--count", str(GENERATED),
                    "--seed", str(SEED), "-o", str(path)], check=True, cwd=REPO)
    return path


def start_reconcile(data_file: Path, *args: str) -> subprocess.Popen[str]:
    cmd = [str(REPO / ".venv" / "bin" / "ansible-playbook"), str(PLAYBOOK),
           "-e", f"mailgov_data_file={data_file}", "-e", "mailgov_allow_mass_change=true",
           *args]
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1"}
    return subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)


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
        waiting = start_reconcile(copy, "-e", "mailgov_lock_wait=120")
        time.sleep(8)
        assert waiting.poll() is None, "it should still be waiting for the lock"
        lock.release()
        out, _ = waiting.communicate(timeout=240)
        assert waiting.returncode == 0, out[-3000:]
    finally:
        lock.release()
        conn.unbind()
    assert ldap_changes(live, copy) == []


def test_two_applies_at_once_do_not_interleave(live: Live, generated: Path,
                                               back_to_data: None) -> None:
    assert len(ldap_changes(live, generated)) > GENERATED  # a large apply to race
    a = start_reconcile(generated, "-e", "mailgov_lock_wait=300")
    b = start_reconcile(generated, "-e", "mailgov_lock_wait=300")
    out_a, _ = a.communicate(timeout=400)
    out_b, _ = b.communicate(timeout=400)
    # Interleaved writes would have failed with entryAlreadyExists / noSuchAttribute.
    assert a.returncode == 0, out_a[-3000:]
    assert b.returncode == 0, out_b[-3000:]
    assert ldap_changes(live, generated) == []
    # One of them did the work; the other planned again under the lock and found nothing.
    creates = [o for o in (out_a, out_b) if "Make the mailboxes match the data" in o
               and "changed: [localhost]" in o.split("Make the mailboxes match the data")[1]
               .split("TASK")[0]]
    assert len(creates) == 1, (out_a[-1500:], out_b[-1500:])


def test_slapd_killed_during_apply_then_rerun_converges(
        live: Live, generated: Path, back_to_data: None,
        host_run: Callable[..., Result]) -> None:
    desired = {normalise_dn(e.dn): e for e in desired_entries(load(generated).data)}
    rng = random.Random()
    kills = 0
    for _round in range(2):
        if not ldap_changes(live, generated):
            break
        proc = start_reconcile(generated, "-e", "mailgov_lock_wait=60")
        wait_for(lambda p=proc: lock_present(live) or p.poll() is not None, 120, "the apply")
        time.sleep(rng.uniform(0.0, 2.0))  # a random point of the writes
        killed = host_run("mail1", "systemctl kill --signal=SIGKILL slapd")
        assert killed.rc == 0, killed.stderr
        kills += 1
        out, _ = proc.communicate(timeout=240)
        started = host_run("mail1", "systemctl restart slapd && systemctl is-active slapd")
        assert started.rc == 0, started.stdout + started.stderr
        wait_for(lambda: _reachable(live), 30, "slapd back")
        if proc.returncode != 0:
            assert "Traceback" not in out
            assert "re-run" in out or "nothing was changed" in out, out[-2000:]
    assert kills >= 1
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


def _reachable(target: Live) -> bool:
    try:
        target.connect().unbind()
        return True
    except Exception:
        return False
