"""The reconcile: validate → connect → read → plan → [lock → plan again → apply → release].

One implementation for ``mailgov apply`` and the Ansible modules (mailgov_mailboxes,
mailgov_units, mailgov_plan), which only map their parameters onto :class:`Settings` and the
:class:`Outcome` onto ``exit_json``. Without ``confirm`` nothing is written (the dry run, and
Ansible's check mode). With it, the lock is taken and the plan is made again from a fresh
read under the lock: another apply may have written since the first read, and a stale plan
would fight it. Runs with nothing to do never take the lock.

Never raises for what a user can cause (bad data, an unreachable server, a held lock, a
refused plan): the Outcome says what happened, in ``status`` and one-line ``message``.

Scopes: ``mailboxes`` = ou=people and the entries under it; ``units`` = everything else
(containers, unit mailboxes, lists, delegate groups). Ansible runs mailboxes first, then
units: a group must be written after its members exist, or the memberof overlay never
gives them memberOf.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from mailgov.i18n import _
from mailgov.plan import CHANGE_KINDS, Change, Plan, normalise_dn

NOTHING = "nothing"  # the directory matches the data
PENDING = "pending"  # dry run: changes to apply
APPLIED = "applied"
PROBLEMS = "problems"  # the data has problems
UNREACHABLE = "unreachable"  # connect or read failed
REFUSED = "refused"  # a safety rail tripped
LOCKED = "locked"  # another apply holds the lock
INCOMPLETE = "incomplete"  # some changes failed or the connection broke: re-run
STALE = "stale"  # the plan made now is not the reviewed one (mailgov.reviewed)

# The command's exit code per status (docs/reconcile.md, "Exit codes").
EXIT_CODES: dict[str, int] = {NOTHING: 0, APPLIED: 0, PROBLEMS: 1, UNREACHABLE: 2,
                              REFUSED: 3, PENDING: 4, LOCKED: 5, INCOMPLETE: 6, STALE: 7}
SCOPES = ("mailboxes", "units", "all")
# Changes the directory does not carry out (the mail host archives the store): reported,
# never written and never counted as "changed".
NOT_LDAP = frozenset({"archive"})
MAX_LISTED = 200  # changes listed in report(); a 50k-mailbox first load would flood it
REFRESH_EVERY = 60.0  # seconds between lock refreshes during a long apply


@dataclass(frozen=True)
class Settings:
    data: str
    uri: str
    password: str | None = None
    bind_dn: str | None = None  # default: the reconciler's account cn=mailgov,ou=services
    ca_file: str | None = None
    timeout: float = 10
    today: date | None = None
    archived: Mapping[str, str] = field(default_factory=dict)  # address -> archive sha256
    allow_mass_change: bool | str = False  # a str is the override's reason (mailgov.plan)
    remove_drift: bool = False
    scope: str = "all"
    # Only these change kinds are applied (empty: all). The lifecycle applies only "purge":
    # a run about archives must not carry out other pending edits nobody reviewed with it.
    # The safety rails still judge the whole plan.
    kinds: tuple[str, ...] = ()
    lock_wait: float = 0
    lock_ttl: int = 3600  # mailgov.lock.DEFAULT_TTL
    base: str | None = None  # the data file at the base of the review (its guards)
    today_max_ahead_days: int = 0  # MG608
    # The plan that was reviewed (mailgov.reviewed.Reviewed): the data file must be the one
    # reviewed, and nothing is written unless the plan made under the lock is that plan.
    reviewed: Any = None
    #: The request this apply carries out (a merge request's URL, a pipeline, a decision
    #: number); recorded with the data commit in the lock, hence in the access log.
    request_ref: str | None = None


class ContextError(ValueError):
    """The plan's context cannot be set up (a base file with problems); one line."""


@dataclass(frozen=True)
class PlanContext:
    """What a plan depends on besides the data and the live state, set up once for
    ``mailgov plan``, ``mailgov apply`` and the modules (one copy of these rules).

    * The guards come from the base of the review (``base``: main's data file), never from
      the file being planned alone (docs/reconcile.md, "Invariants").
    * ``today`` may move ahead of the clock by ``max_ahead_days`` at most (MG608), and the
      plan notes any other date; a cancel is recorded with the clock's day whatever
      ``today`` says, so no date given on the command line shortens a retention.
    """

    today: date
    clock: date
    base: Any = None  # mailgov.model.Directory of the base file
    base_path: str | None = None
    max_ahead_days: int = 0
    locate: Any = None  # data path -> FILE:LINE:COL

    @classmethod
    def make(cls, result: Any, *, today: date | None, base_path: str | None,
             max_ahead_days: int = 0, clock: date | None = None) -> PlanContext:
        from mailgov.validate import validate

        clock = clock or date.today()
        base = None
        if base_path:
            base_result = validate(base_path, today=clock)
            if not base_result.ok or base_result.directory is None:
                first = base_result.problems[0].format() if base_result.problems else "?"
                raise ContextError(_("the base of the review {path} does not validate "
                                     "({problem}); the guards are read from it").format(
                    path=base_path, problem=first))
            base = base_result.directory
        return cls(today or clock, clock, base, base_path, max_ahead_days, result.locate)

    def plan(self, desired: Any, live: Any, **kwargs: Any) -> Plan:
        from mailgov.plan import plan

        made = plan(desired, live, today=self.today, recorded=self.clock, base=self.base,
                    locate=self.locate, **kwargs)
        refusals, notes = list(made.refusals), list(made.notes)
        ahead = (self.today - self.clock).days
        if ahead > self.max_ahead_days:
            refusals.append("MG608 " + _(
                "the plan is dated {today}, {ahead} day(s) ahead of the clock ({clock}); at "
                "most {most} allowed (mailgov_today_max_ahead_days in the inventory): a date "
                "ahead would bring archives and purges forward").format(
                    today=self.today, ahead=ahead, clock=self.clock, most=self.max_ahead_days))
        elif ahead:
            notes.append(_("dated {today}, {ahead} day(s) from the clock ({clock})").format(
                today=self.today, ahead=f"{ahead:+d}", clock=self.clock))
        if self.base_path:
            notes.append(_("base of the review: {path}").format(path=self.base_path))
        return Plan(made.changes, made.drift, tuple(refusals), tuple(notes), made.scheduled)


def in_scope(change: Change, scope: str, base_dn: str) -> bool:
    if scope == "all":
        return True
    people = normalise_dn(f"ou=people,{base_dn}")
    dn = normalise_dn(change.old_dn or change.dn)
    is_people = dn == people or dn.endswith("," + people)
    return is_people if scope == "mailboxes" else not is_people


@dataclass
class Outcome:
    status: str
    message: str
    scope: str = "all"
    kinds: tuple[str, ...] = ()
    base_dn: str = ""
    plan: Plan | None = None  # the plan that was applied (or would be)
    problems: list[str] = field(default_factory=list)
    unit_names: dict[str, str] = field(default_factory=dict)
    applied: Any = None  # mailgov.apply.ApplyResult, when something was written
    replanned: bool = False  # the plan under the lock differed from the first one

    @property
    def ok(self) -> bool:
        return self.status in (NOTHING, PENDING, APPLIED)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    @property
    def changed(self) -> bool:
        """Something was (or, in a dry run, would be) written to the directory."""
        if self.status == PENDING:
            return True
        return self.applied is not None and self.applied.applied > 0

    @property
    def scoped(self) -> list[Change]:
        if self.plan is None:
            return []
        return [c for c in self.plan.changes if in_scope(c, self.scope, self.base_dn)
                and (not self.kinds or c.kind in self.kinds)]

    @property
    def writes(self) -> list[Change]:
        return [c for c in self.scoped if c.kind not in NOT_LDAP]

    def scoped_plan(self) -> Plan:
        if self.plan is None:
            return Plan(changes=(), drift=(), refusals=())
        return Plan(changes=tuple(self.scoped), drift=self.plan.drift,
                    refusals=self.plan.refusals, notes=self.plan.notes,
                    scheduled=self.plan.scheduled)

    def report(self) -> dict[str, Any]:
        """JSON-friendly summary: what ``mailgov apply --format json`` prints and the modules
        return."""
        scoped = self.scoped
        drift = self.plan.drift if self.plan is not None else ()
        out: dict[str, Any] = {
            "status": self.status, "message": self.message, "replanned": self.replanned,
            "counts": _counts(scoped),
            "changes": [_brief(c) for c in scoped[:MAX_LISTED]],
            "changes_total": len(scoped),
            "drift": [_brief(c) for c in drift[:MAX_LISTED]],
            "drift_total": len(drift),
            "refusals": list(self.plan.refusals) if self.plan is not None else [],
            "pending": [_brief(c) for c in scoped if c.kind in NOT_LDAP],
            # The mail host's work, from this plan only (the one purge gate): the stores to
            # archive, and those whose entry the apply deleted (the store module checks the
            # entry is gone before it deletes anything). The home is the live entry's.
            "stores": [{"kind": c.kind, "address": c.subject, "dn": c.dn, "store": c.store}
                       for c in scoped if c.kind in ("archive", "purge")
                       and (c.kind == "archive" or self.status in (APPLIED, INCOMPLETE))],
        }
        if self.problems:
            out["problems"] = self.problems[:50]
        if self.applied is not None:
            out["applied"] = self.applied.as_dict()
        return out


def _counts(changes: list[Change]) -> dict[str, int]:
    out: dict[str, int] = {}
    for c in changes:
        out[c.kind] = out.get(c.kind, 0) + 1
    return dict(sorted(out.items()))


def _brief(c: Change) -> dict[str, Any]:
    """A change without before/after (those are the diff's, and large)."""
    out = c.to_dict()
    out.pop("before", None)
    out.pop("after", None)
    return out


class _Refresher:
    """apply()'s on_change callback: refresh the lock at most once a minute."""

    def __init__(self, lock: Any) -> None:
        self.lock = lock
        self.last = time.monotonic()

    def __call__(self, change: Change, error: str | None) -> None:
        if time.monotonic() - self.last > REFRESH_EVERY:
            self.lock.refresh()
            self.last = time.monotonic()


def _signature(changes: list[Change]) -> list[dict[str, object]]:
    return [c.to_dict() for c in changes]


def reconcile(settings: Settings, *, confirm: bool = False) -> Outcome:
    """Plan, and with ``confirm`` apply under the lock. Never raises for user errors."""
    # Imported here: `mailgov validate` must not need ldap3 to start.
    from ldap3.core.exceptions import LDAPException

    from mailgov.apply import ConnectionLost, apply
    from mailgov.live import LiveError, connect, read_live
    from mailgov.lock import LockError, ReconcileLock
    from mailgov.validate import validate

    s = settings
    if s.scope not in SCOPES:
        return Outcome(PROBLEMS, _("scope {scope!r}: use one of {scopes}").format(
            scope=s.scope, scopes=', '.join(SCOPES)))
    unknown = sorted(set(s.kinds) - set(CHANGE_KINDS))
    if unknown:
        return Outcome(PROBLEMS, _("kinds {unknown}: use change kinds of {kinds}").format(
            unknown=', '.join(unknown), kinds=', '.join(CHANGE_KINDS)))
    if s.reviewed is not None:
        from mailgov.reviewed import ReviewedPlanError, inputs_changed

        try:
            moved = inputs_changed(s.reviewed, s.data, s.base)
        except ReviewedPlanError as exc:
            return Outcome(PROBLEMS, _("{error}; nothing was changed").format(
                error=exc), scope=s.scope)
        if moved:
            return Outcome(STALE, "; ".join(moved) + "; nothing was changed: plan again and "
                           "have that plan reviewed", scope=s.scope)
    today = s.today or date.today()
    result = validate(s.data, today=today)
    if not result.ok:
        problems = [p.format() for p in result.problems]
        return Outcome(PROBLEMS, _("{data}: {count} problem(s) in the data; nothing was "
                                   "changed. First: {first}").format(
            data=s.data, count=len(problems), first=problems[0]), scope=s.scope, problems=problems)
    desired = result.directory
    base_dn = desired.organization.base_dn
    try:
        context = PlanContext.make(result, today=s.today, base_path=s.base,
                                   max_ahead_days=s.today_max_ahead_days)
    except ContextError as exc:
        return Outcome(PROBLEMS, _("{error}; nothing was changed").format(error=exc), scope=s.scope)
    out = Outcome(NOTHING, "", scope=s.scope, kinds=tuple(s.kinds), base_dn=base_dn,
                  unit_names={u.id: u.name for u in desired.units})
    bind_dn = s.bind_dn or (None if s.uri.startswith("ldapi:")
                            else f"cn=mailgov,ou=services,{base_dn}")

    def fresh_plan(conn: Any) -> Plan:
        live = read_live(conn, base_dn)
        return context.plan(desired, live, archived=dict(s.archived),
                            allow_mass_change=s.allow_mass_change,
                            remove_drift=s.remove_drift)

    def stop(status: str, message: str) -> Outcome:
        out.status, out.message = status, message
        return out

    try:
        conn = connect(s.uri, bind_dn, s.password, s.ca_file, s.timeout)
        out.plan = fresh_plan(conn)
    except (LiveError, LDAPException, OSError) as exc:
        return stop(UNREACHABLE, _("{error}; nothing was changed").format(error=exc))
    if out.plan.refusals:
        return stop(REFUSED, "the plan was refused by the safety rails (nothing was changed): "
                    + "; ".join(out.plan.refusals))
    stale = _not_reviewed(s, out.plan)
    if stale:
        _close(conn)
        return stop(STALE, _("{stale}; nothing was changed: plan again and have that plan "
                             "reviewed").format(stale=stale))
    if not out.writes:
        _close(conn)
        return stop(NOTHING, "nothing to apply" + _pending_note(out))
    if not confirm:
        _close(conn)
        return stop(PENDING, _("{count} change(s) to apply (dry run, nothing written)").format(
            count=len(out.writes))
                    + _pending_note(out))

    first = _signature(out.writes)
    from mailgov.lock import audit_fields
    from mailgov.reviewed import git_commit

    lock = ReconcileLock(conn, base_dn, wait=s.lock_wait, ttl=s.lock_ttl,
                         audit=audit_fields(git_commit(s.data), s.request_ref))
    try:
        lock.acquire()
    except LockError as exc:
        _close(conn)
        return stop(LOCKED, _("{error}; nothing was changed").format(error=exc))
    try:
        out.plan = fresh_plan(conn)
    except (LiveError, LDAPException, OSError) as exc:
        _release(lock, s, bind_dn)
        return stop(UNREACHABLE, _("reading the directory under the lock failed: {error}; "
                                   "nothing was changed").format(error=exc))
    out.replanned = _signature(out.writes) != first
    if out.plan.refusals:
        lock.release()
        return stop(REFUSED, "the plan made under the lock was refused by the safety rails "
                    "(nothing was changed): " + "; ".join(out.plan.refusals))
    stale = _not_reviewed(s, out.plan)
    if stale:
        lock.release()
        _close(conn)
        return stop(STALE, _("under the lock, {stale}; nothing was changed: plan again and have "
                             "that plan reviewed").format(stale=stale))
    writes = out.writes
    if not writes:
        lock.release()
        return stop(NOTHING, "nothing to apply (another apply did it meanwhile)")
    try:
        out.applied = apply(conn, Plan(changes=tuple(writes), drift=(), refusals=()),
                            on_change=_Refresher(lock))
    except (ConnectionLost, LockError) as exc:
        _release(lock, s, bind_dn)
        return stop(INCOMPLETE, _("{error}; re-run to finish (the next plan holds what is "
                                  "left)").format(
            error=exc))
    if out.applied.aborted is not None:
        _release(lock, s, bind_dn)  # the old connection is dead: release on a new one
    else:
        lock.release()
        _close(conn)
    if not out.applied.ok:
        errors = [e.format() for e in out.applied.errors]
        why = out.applied.aborted or _("{count} change(s) failed").format(count=len(errors))
        return stop(INCOMPLETE, _("apply incomplete: {why}; first errors: {errors}. Re-run to "
                                  "finish (the next plan holds only what is left)").format(
            why=why, errors='; '.join(errors[:3]) or '-'))
    return stop(APPLIED, _("{applied} change(s) applied in {seconds:.1f} s").format(
        applied=out.applied.applied, seconds=out.applied.seconds) + _pending_note(out))


def _not_reviewed(s: Settings, plan: Plan) -> str | None:
    """Why ``plan`` is not the reviewed plan (None: it is, or no plan was reviewed). The whole
    plan is compared, as `mailgov plan --out` recorded it, whatever the scope applied now."""
    if s.reviewed is None:
        return None
    from mailgov.reviewed import differences

    return differences(s.reviewed, plan.changes)


def _pending_note(out: Outcome) -> str:
    """Archives are the mail host's (the lifecycle play): say so, they are not forgotten."""
    pending = [c for c in out.scoped if c.kind in NOT_LDAP]
    return _("; {count} archive(s) left to the mail host").format(
        count=len(pending)) if pending else ""


def _close(conn: Any) -> None:
    with contextlib.suppress(Exception):  # closing cannot change the outcome
        conn.unbind()


def _release(lock: Any, s: Settings, bind_dn: str | None) -> None:
    """Release on a new connection; if the server is down, the next apply on this machine
    sees the holder's process gone (or the lock expired) and takes it over."""
    from mailgov.live import connect

    with contextlib.suppress(Exception):  # the lock expires or is taken over anyway
        lock.release(connect(s.uri, bind_dn, s.password, s.ca_file, min(s.timeout, 5)))
