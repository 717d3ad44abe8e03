"""playbooks/reconcile.yml against the lab's real slapd: plan, check mode, apply, idempotence.

Run after `lab/lab up` and `ansible-playbook playbooks/site.yml` (which reconciles
data/mailboxes.yaml):
    MAILGOV_LAB_ID=N .venv/bin/python -m pytest -m lab tests/lab/test_reconcile_lab.py

Data changes are made on a COPY of the data file, which the playbook is pointed at with
``-e mailgov_data_file=...``; data/mailboxes.yaml is never edited. Each test puts the lab back
(reconcile of the original file, and removal of entries only the copy asked for).
Expected values come from the planner and mailgov.directory, never typed twice.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import DATA_FILE, LAB_DIR, REPO, LabHost

from mailgov.directory import desired_entries
from mailgov.loader import load
from mailgov.plan import Plan, normalise_dn, plan
from mailgov.validate import validate

pytestmark = pytest.mark.lab

PLAYBOOK = REPO / "playbooks" / "reconcile.yml"
RECAP = re.compile(r"^localhost\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+"
                   r"failed=(\d+)", re.MULTILINE)


@dataclass(frozen=True)
class Run:
    rc: int
    changed: int
    failed: int
    out: str


def run_reconcile(data_file: Path | None = None, *args: str, timeout: int = 300) -> Run:
    """ansible-playbook playbooks/reconcile.yml [-e mailgov_data_file=...] ARGS."""
    cmd = [str(REPO / ".venv" / "bin" / "ansible-playbook"), str(PLAYBOOK)]
    if data_file is not None:
        cmd += ["-e", f"mailgov_data_file={data_file}"]
    cmd += list(args)
    env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0"}
    env.pop("MAILGOV_DATA", None)
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout,
                         env=env, check=False)
    text = out.stdout + out.stderr
    m = RECAP.search(text)
    changed, failed = (int(m.group(2)), int(m.group(4))) if m else (-1, -1)
    return Run(out.returncode, changed, failed, text)


@dataclass
class Live:
    """The reconciler's view of the provider: connect, read, plan (as the modules do)."""

    uri: str
    password: str = field(repr=False)  # never in an assertion message
    ca: str
    base_dn: str

    def connect(self) -> Any:
        from mailgov.live import connect

        return connect(self.uri, f"cn=mailgov,ou=services,{self.base_dn}", self.password,
                       self.ca, 10)

    def read(self) -> Any:
        """The managed containers only (the reconcile lock under ou=services comes and goes)."""
        from mailgov.live import read_live

        conn = self.connect()
        services = normalise_dn(f"ou=services,{self.base_dn}")
        try:
            return {dn: attrs for dn, attrs in read_live(conn, self.base_dn).items()
                    if not (dn == services or dn.endswith("," + services))}
        finally:
            conn.unbind()

    def plan(self, data_file: Path, **kw: Any) -> Plan:
        result = validate(data_file)
        assert result.ok, [p.format() for p in result.problems][:5]
        return plan(result.directory, self.read(), today=date.today(), **kw)


@pytest.fixture(scope="session")
def live(lab_hosts: dict[str, LabHost], lab_ca: Path) -> Live:
    return lab_live(lab_hosts, lab_ca)


def lab_live(lab_hosts: dict[str, LabHost], lab_ca: Path) -> Live:
    secret = LAB_DIR / "secrets" / "ldap-mailgov"
    if not secret.is_file():
        pytest.fail(f"no {secret}: converge the lab (site.yml creates the reconciler account)")
    base = load(DATA_FILE).data["organization"]["base_dn"]
    return Live(f"ldap://{lab_hosts['mail1'].addr}", secret.read_text().strip(), str(lab_ca),
                base)


def data_copy(tmp_path: Path, edit: Any) -> Path:
    """A copy of the data file with ``edit(data)`` applied (dates stay text)."""
    data = load(DATA_FILE).data
    edit(data)
    path = tmp_path / "mailboxes.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False),
                    encoding="utf-8")
    result = validate(path)
    assert result.ok, [p.format() for p in result.problems][:5]
    return path


def remove_undesired(live: Live, data_file: Path) -> int:
    """Delete what a test's data file added and the given one does not ask for.

    Groups first (they name people), then people, then units. Returns how many.
    """
    wanted = {normalise_dn(e.dn) for e in desired_entries(load(data_file).data)}
    containers = [normalise_dn(f"ou={c},{live.base_dn}") for c in ("groups", "people", "units")]
    state = live.read()
    conn = live.connect()
    n = 0
    try:
        for container in containers:
            for dn in state:
                d = normalise_dn(dn)
                if d.endswith("," + container) and d not in wanted:
                    assert conn.delete(dn), conn.result
                    n += 1
    finally:
        conn.unbind()
    return n


@pytest.fixture
def restore(live: Live) -> Iterator[None]:
    """After the test: the lab holds data/mailboxes.yaml again."""
    yield
    remove_undesired(live, DATA_FILE)
    res = run_reconcile(DATA_FILE, "-e", "mailgov_allow_mass_change=true")
    assert res.rc == 0, res.out[-3000:]


def _edit(data: dict[str, Any]) -> None:
    """One of each common change: a new person, an alias, a quota, a suspension."""
    boxes = data["mailboxes"]
    protected = set(data["policy"].get("protected", []))
    actives = [m for m in boxes if m.get("state", "active") == "active"
               and m.get("kind", "personal") == "personal" and m["address"] not in protected
               and m.get("role", "staff") == "staff"]
    # The last ones: the test passwords go to the first ones of the file.
    a, b = actives[-1], actives[-2]
    a.setdefault("aliases", []).append(a["address"] + ".alias")
    b["quota_mb"] = 3072
    c = actives[-4]
    c.update(state="suspended", suspended={"date": date.today().isoformat(),
                                           "reason": "Nghỉ không lương", "request": "99/QĐ-TEST"})
    new = {k: v for k, v in actives[-3].items()
           if k in ("unit", "kind", "role", "created", "request")}
    new.update(address="zzreconcile.test", id=max(m["id"] for m in boxes) + 1,
               name="Thử Nghiệm Đối Soát",
               naming_exemption={"reason": "test mailbox of the lab reconcile test",
                                 "request": actives[-3].get("request") or "CV-0001"})
    boxes.append(new)


def test_site_left_nothing_to_do(live: Live) -> None:
    """site.yml reconciled data/mailboxes.yaml: a fresh plan holds no change."""
    p = live.plan(DATA_FILE)
    assert p.ok, p.refusals
    ldap_changes = [c for c in p.changes if c.kind != "archive"]
    assert ldap_changes == [], [f"{c.kind} {c.dn}" for c in ldap_changes[:10]]


def test_change_is_planned_checked_applied_then_nothing(live: Live, tmp_path: Path,
                                                        restore: None) -> None:
    copy = data_copy(tmp_path, _edit)
    before = live.plan(copy)
    kinds = {c.kind for c in before.changes}
    assert {"create", "modify", "suspend"} <= kinds, before.counts()
    suspended_dn = next(normalise_dn(c.dn) for c in before.changes if c.kind == "suspend")
    live_before = live.read()

    # Check mode predicts "changed" and writes nothing.
    check = run_reconcile(copy, "--check", "--diff")
    assert check.rc == 0, check.out[-3000:]
    assert check.changed >= 1, check.out[-3000:]
    assert "zzreconcile.test" in check.out  # the diff names the new entry
    assert live.read() == live_before

    # Apply: the plan is carried out, the next plan is empty.
    applied = run_reconcile(copy)
    assert applied.rc == 0, applied.out[-3000:]
    assert applied.changed >= 1
    after = live.plan(copy)
    assert [c for c in after.changes if c.kind != "archive"] == []
    state = live.read()
    new_dn = normalise_dn(f"uid=zzreconcile.test,ou=people,{live.base_dn}")
    assert new_dn in state
    assert [v.lower() for v in state[new_dn]["mail"]] == [f"zzreconcile.test@{_domain()}"]
    # The suspension: the administrator lock (slapo-ppolicy(5): 000001010000Z locks until an
    # administrator removes it), mail still accepted (mailEnabled stays TRUE).
    assert state[suspended_dn]["pwdAccountLockedTime"] == ("000001010000Z",)
    assert state[suspended_dn]["mailEnabled"] == ("TRUE",)

    # A second run changes nothing, and says so; check mode agrees.
    again = run_reconcile(copy)
    assert again.rc == 0 and again.changed == 0, again.out[-3000:]
    check2 = run_reconcile(copy, "--check")
    assert check2.rc == 0 and check2.changed == 0, check2.out[-3000:]


def test_bad_data_fails_before_connecting(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(DATA_FILE.read_text(encoding="utf-8").replace("version: 1", "version: x", 1),
                   encoding="utf-8")
    res = run_reconcile(bad)
    assert res.rc != 0
    assert "Traceback" not in res.out
    assert "problem" in res.out.lower() or "version" in res.out


def _domain() -> str:
    return str(load(DATA_FILE).data["organization"]["domain"])
