"""Shared body of the reconcile modules (mailgov_units, mailgov_mailboxes, mailgov_plan).

The modules are thin: parse args → validate the data → connect (one bind) → read live (one
paged search) → plan → apply the changes of their scope unless in check mode → return
changed / diff / counts. The planner, the live reader, the apply and the lock are the
``mailgov`` package (one implementation shared with the CLI), so the modules run on the
controller with the project's venv: ``delegate_to: localhost`` or a play on localhost, with
``ansible_python_interpreter: "{{ ansible_playbook_python }}"``.

Scopes: ``mailboxes`` = ou=people and the entries under it; ``units`` = everything else the
plan touches (containers ou=units / ou=groups, unit mailboxes, distribution lists and
delegate groups). Run mailboxes first, then units: a group must be written after its members
exist, or the memberof overlay never gives them memberOf.
"""

from __future__ import annotations

import contextlib
import json
import traceback
from datetime import date
from typing import Any

try:
    from ldap3.core.exceptions import LDAPException

    from mailgov.apply import ApplyResult, ConnectionLost, apply, set_passwords
    from mailgov.live import LiveError, connect, read_live
    from mailgov.lock import DEFAULT_TTL, LockError, ReconcileLock
    from mailgov.plan import Change, Plan, normalise_dn, plan
    from mailgov.validate import validate

    IMPORT_ERROR = None
except ImportError:  # reported by fail_json, not a traceback
    IMPORT_ERROR = traceback.format_exc()
    DEFAULT_TTL = 3600

SCOPES = ("mailboxes", "units", "all")
# Changes the directory does not carry out (the mail host archives the store): reported,
# never counted as "changed" by these modules.
NOT_LDAP = frozenset({"archive"})
MAX_DIFF = 200  # diff entries returned; a 50k-mailbox first load would flood the output

# Options every reconcile module takes (the plan module ignores the apply-only ones).
COMMON_ARGS: dict[str, dict[str, Any]] = {
    "data": {"type": "path", "required": True},
    "uri": {"type": "str", "required": True},
    "bind_dn": {"type": "str"},
    "bind_password": {"type": "str", "required": True, "no_log": True},
    "ca_file": {"type": "path"},
    "timeout": {"type": "int", "default": 10},
    "today": {"type": "str"},
    "archived": {"type": "dict", "default": {}},
    "allow_mass_change": {"type": "bool", "default": False},
    "remove_drift": {"type": "bool", "default": False},
}
APPLY_ARGS: dict[str, dict[str, Any]] = {
    "lock_wait": {"type": "int", "default": 0},
    "lock_ttl": {"type": "int", "default": DEFAULT_TTL},
}


def in_scope(change: Change, scope: str, base_dn: str) -> bool:
    if scope == "all":
        return True
    people = normalise_dn(f"ou=people,{base_dn}")
    dn = normalise_dn(change.old_dn or change.dn)
    is_people = dn == people or dn.endswith("," + people)
    return is_people if scope == "mailboxes" else not is_people


def _attrs_text(attrs: Any) -> str:
    if attrs is None:
        return ""
    lines = []
    for name in sorted(attrs):
        for value in attrs[name]:
            lines.append(f"{name}: {value}")
    return "\n".join(lines) + ("\n" if lines else "")


def change_dict(c: Change) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": c.kind, "dn": c.dn, "subject": c.subject, "unit": c.unit}
    if c.old_dn:
        out["old_dn"] = c.old_dn
    if c.reason:
        out["reason"] = c.reason
    if c.store:
        out["store"] = c.store
    for key in ("add", "delete", "replace"):
        value = getattr(c, key)
        if value:
            out[key] = {k: list(v) for k, v in value.items()}
    return out


def diff_of(changes: list[Change]) -> list[dict[str, str]]:
    """Ansible's diff format (before/after text per entry), for --diff."""
    out = []
    for c in changes[:MAX_DIFF]:
        out.append({
            "before_header": c.old_dn or c.dn,
            "after_header": c.dn,
            "before": _attrs_text(c.before),
            "after": _attrs_text(c.after),
        })
    if len(changes) > MAX_DIFF:
        out.append({"before_header": "…", "after_header": "…", "before": "",
                    "after": f"({len(changes) - MAX_DIFF} more changes not shown)\n"})
    return out


def counts_of(changes: list[Change]) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in changes:
        out[c.kind] = out.get(c.kind, 0) + 1
    return dict(sorted(out.items()))


def _today(module: Any) -> date:
    text = module.params.get("today")
    if not text:
        return date.today()
    try:
        return date.fromisoformat(text)
    except ValueError:
        module.fail_json(msg=f"today: {text!r} is not a date YYYY-MM-DD")
        raise  # unreachable: fail_json exits


def prepare(module: Any) -> tuple[Any, Plan, Any]:
    """Validate → connect → read live → plan. Returns (directory, plan, connection)."""
    if IMPORT_ERROR is not None:
        module.fail_json(
            msg="cannot import the mailgov package: run this module on the controller with the "
                "project's venv (delegate_to: localhost, ansible_python_interpreter: "
                "\"{{ ansible_playbook_python }}\")",
            exception=IMPORT_ERROR)
    p = module.params
    today = _today(module)
    result = validate(p["data"], today=today)
    if not result.ok:
        problems = [pr.format() for pr in result.problems]
        module.fail_json(
            msg=f"{p['data']}: {len(problems)} problem(s) in the data; nothing was changed. "
                f"First: {problems[0]}",
            problems=problems[:50])
    desired = result.directory
    base_dn = desired.organization.base_dn
    try:
        # The reconciler's account unless told otherwise (docs/directory.md).
        p["bind_dn"] = p["bind_dn"] or f"cn=mailgov,ou=services,{base_dn}"
        conn = connect(p["uri"], p["bind_dn"], p["bind_password"], p["ca_file"], p["timeout"])
    except LiveError as exc:
        module.fail_json(msg=f"{exc}; nothing was changed")
    return desired, make_plan(module, desired, conn, today), conn


def make_plan(module: Any, desired: Any, conn: Any, today: date | None = None) -> Plan:
    """One paged read of the live tree, then the pure planner."""
    p = module.params
    try:
        live = read_live(conn, desired.organization.base_dn)
    except (LiveError, LDAPException) as exc:
        module.fail_json(msg=f"reading the live directory failed: {exc}; nothing was changed")
    return plan(desired, live, today=today or _today(module), archived=p["archived"] or {},
                allow_mass_change=p["allow_mass_change"], remove_drift=p["remove_drift"])


def report(the_plan: Plan, scoped: list[Change]) -> dict[str, Any]:
    return {
        "counts": counts_of(scoped),
        "changes": [change_dict(c) for c in scoped[:MAX_DIFF]],
        "changes_total": len(scoped),
        "drift": [change_dict(c) for c in the_plan.drift[:MAX_DIFF]],
        "drift_total": len(the_plan.drift),
        "refusals": list(the_plan.refusals),
        "pending": [change_dict(c) for c in scoped if c.kind in NOT_LDAP],
    }


def run_apply(module: Any, scope: str) -> None:
    """The body of mailgov_units / mailgov_mailboxes."""
    desired, the_plan, conn = prepare(module)
    base_dn = desired.organization.base_dn
    p = module.params
    scoped = [c for c in the_plan.changes if in_scope(c, scope, base_dn)]
    writes = [c for c in scoped if c.kind not in NOT_LDAP]
    out = report(the_plan, scoped)
    if the_plan.refusals:
        module.fail_json(
            msg="the plan was refused by the safety rails (nothing was changed): "
                + "; ".join(the_plan.refusals)
                + ". Review the plan; if intended, set allow_mass_change",
            **out)
    pw_plan: dict[str, str] = {}
    wanted: dict[str, str] = {}
    if p.get("test_passwords_file"):
        wanted = test_passwords(p["test_passwords_file"],
                                test_addresses(desired, p["test_mailbox_count"]),
                                write=not module.check_mode)
        pw_plan = passwords_to_set(p, wanted, desired, the_plan)
    changed = bool(writes) or bool(pw_plan)
    if module._diff:
        out["diff"] = diff_of(writes)
    if module.check_mode or not changed:
        module.exit_json(changed=changed, passwords_set=len(pw_plan), **out)

    lock = ReconcileLock(conn, base_dn, wait=p["lock_wait"], ttl=p["lock_ttl"])
    try:
        lock.acquire()
    except LockError as exc:
        module.fail_json(msg=f"{exc}; nothing was changed", **out)
    # Under the lock, plan again from a fresh read: another apply may have written between
    # our first read and the lock (a stale plan would fight it). No-op runs never lock.
    the_plan = make_plan(module, desired, conn)
    if pw_plan:  # the passwords too: the other apply may have set them meanwhile
        pw_plan = passwords_to_set(p, wanted, desired, the_plan)
    scoped = [c for c in the_plan.changes if in_scope(c, scope, base_dn)]
    writes = [c for c in scoped if c.kind not in NOT_LDAP]
    out = report(the_plan, scoped)
    if module._diff:
        out["diff"] = diff_of(writes)
    if the_plan.refusals or not (writes or pw_plan):
        lock.release()
        if the_plan.refusals:
            module.fail_json(msg="the plan was refused by the safety rails (nothing was "
                                 "changed): " + "; ".join(the_plan.refusals), **out)
        module.exit_json(changed=False, passwords_set=0, **out)
    sub = Plan(changes=tuple(writes), drift=(), refusals=())
    pw_errors: list[Any] = []
    try:
        applied: ApplyResult = apply(conn, sub, on_change=_Refresher(lock))
        if pw_plan and applied.aborted is None:
            pw_errors = set_passwords(conn, pw_plan, clear_reset=True)  # lab test passwords
    except (ConnectionLost, LockError) as exc:
        _release(lock, p)
        module.fail_json(msg=f"{exc}; re-run to finish (the next plan holds what is left)",
                         changed=True, **out)
    if applied.aborted is not None:
        _release(lock, p)  # the old connection is dead: release on a new one
    else:
        lock.release()
    out["applied"] = applied.as_dict()
    if not applied.ok or pw_errors:
        errs = [e.format() for e in applied.errors] + [e.format() for e in pw_errors]
        why = applied.aborted or f"{len(errs)} change(s) failed"
        module.fail_json(
            msg=f"apply incomplete: {why}; first errors: {'; '.join(errs[:3]) or '-'}. "
                "Re-run to finish (the next plan holds only what is left)",
            changed=applied.applied > 0, **out)
    module.exit_json(changed=True, passwords_set=len(pw_plan), **out)


def _release(lock: Any, p: dict[str, Any]) -> None:
    """Best effort on a new connection; if the server is down, the next apply on this
    machine sees the holder's process gone and takes the lock over."""
    try:
        lock.release(connect(p["uri"], p["bind_dn"], p["bind_password"], p["ca_file"],
                             min(p["timeout"], 5)))
    except Exception:  # the lock expires or is taken over anyway
        lock._value = None


class _Refresher:
    """on_change callback: refresh the lock at most once a minute during a long apply."""

    def __init__(self, lock: Any) -> None:
        import time

        self._time = time.monotonic
        self.lock = lock
        self.last = self._time()

    def __call__(self, change: Any, error: Any) -> None:
        if self._time() - self.last > 60:
            self.lock.refresh()
            self.last = self._time()


def test_addresses(desired: Any, count: int) -> list[str]:
    """The mailboxes that get a known password in the lab (as the old loader chose them).

    The first ``count`` active personal mailboxes of the file, plus the delegates of the
    first unit mailbox that has delegates (for delegation tests).
    """
    active = [m for m in desired.mailboxes if m.state == "active"]
    chosen = [m.address for m in active if m.kind == "personal"][:count]
    first = next((u for u in desired.units if u.mailbox.delegates), None)
    if first is not None:
        ok = {m.address for m in active}
        chosen += [d for d in first.mailbox.delegates if d in ok]
    return [desired.address(a) for a in dict.fromkeys(chosen)]


def test_passwords(path: str, addresses: list[str], write: bool = True) -> dict[str, str]:
    """Read the lab's test-password file, add a random password for each missing address.

    Written 0600 (the directory is git-ignored). Format: {"<address>": "<password>"}.
    """
    import os
    import secrets
    import string

    try:
        with open(path, encoding="utf-8") as fh:
            known = json.load(fh)
    except FileNotFoundError:
        known = {}
    missing = [a for a in addresses if a not in known]
    if missing:
        if not write:  # check mode: they would be generated and set
            return {a: known.get(a, "") for a in addresses}
        alphabet = string.ascii_letters + string.digits
        for a in missing:
            # A random part plus one of each character class, for any quality policy.
            known[a] = "".join(secrets.choice(alphabet) for _ in range(16)) + ".Aa7"
        os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
        fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(known, fh, ensure_ascii=False, indent=2)
            fh.write("\n")
        os.replace(path + ".tmp", path)
    return {a: known[a] for a in addresses}


def passwords_to_set(p: dict[str, Any], passwords: dict[str, str], desired: Any,
                     the_plan: Plan) -> dict[str, str]:
    """DN -> password for the requested ones the server does not accept yet (a bind tells)."""
    people = f"ou=people,{desired.organization.base_dn}"
    creates = {normalise_dn(c.dn) for c in the_plan.changes if c.kind == "create"}
    to_set: dict[str, str] = {}
    for address, password in passwords.items():
        dn = f"uid={address.split('@', 1)[0]},{people}"
        # An empty password is one check mode has not generated yet (and an empty simple
        # bind would "succeed" as unauthenticated): it is to be set.
        if password and normalise_dn(dn) not in creates:
            try:
                connect(p["uri"], dn, password, p["ca_file"], p["timeout"]).unbind()
                continue  # accepted already
            except LiveError:
                pass
        to_set[dn] = password
    return to_set


def run_plan(module: Any) -> None:
    """The body of mailgov_plan: never writes."""
    desired, the_plan, conn = prepare(module)
    scope = module.params.get("scope", "all")
    scoped = [c for c in the_plan.changes if in_scope(c, scope, desired.organization.base_dn)]
    out = report(the_plan, scoped)
    out["ok"] = the_plan.ok
    out["markdown"] = _markdown(the_plan)
    with contextlib.suppress(Exception):  # closing a read-only connection cannot matter
        conn.unbind()
    if module._diff:
        out["diff"] = diff_of([c for c in scoped if c.kind not in NOT_LDAP])
    # Read-only: it never changes anything, whatever the plan says.
    module.exit_json(changed=False, **out)


def _markdown(the_plan: Plan) -> str:
    from mailgov.report_plan import render_markdown  # the same text as `mailgov plan`

    return str(render_markdown(the_plan))


def as_json(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False)
