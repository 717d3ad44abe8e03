"""Dated changes (issue 14 item 4): the data as of a planning day.

A record says where it ends up (``state``) and when each step takes effect: a suspension from
``suspended.date`` until ``suspended.until`` (kept as history once over), a cancel from
``cancelled.date``, a rename from the last ``renamed_from`` entry's ``date``, a move from
``moved_from.date`` and a domain switch from the old domain's ``primary_until``. A date after the
planning day schedules the step: :func:`as_of` gives the directory as it must be on that day
(the planner plans it) and the steps still to come (the plan lists them under "scheduled").
A daily scheduled reconcile applies each step on its day (docs/reconcile.md, "Dated
changes"). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from mailgov.i18n import _
from mailgov.model import Directory, Lifecycle, Mailbox, Organization


def day(value: object) -> date | None:
    if value is None:
        return None
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _holds(block: Lifecycle | None, today: date) -> bool:
    if block is None:
        return False
    start, end = day(block.date), day(block.until)
    return start is not None and start <= today and (end is None or today < end)


def effective_state(m: Mailbox, today: date) -> str:
    """The lifecycle state of ``m`` on ``today``."""
    if m.state == "cancelled" and m.cancelled is not None:
        start = day(m.cancelled.date)
        if start is not None and start <= today:
            return "cancelled"
    if m.state in ("suspended", "cancelled", "active") and _holds(m.suspended, today):
        return "suspended"
    return "active"


def _steps(domain: str, m: Mailbox, today: date) -> list[tuple[date, str]]:
    out: list[tuple[date, str]] = []
    full = f"{m.address}@{domain}"
    s, c = m.suspended, m.cancelled
    if s is not None and (start := day(s.date)) is not None and start > today:
        out.append((start, _("suspend {address} ({reason}, {request})").format(
            address=full, reason=s.reason, request=s.request)))
    if s is not None and (end := day(s.until)) is not None and end > today:
        out.append((end, _("end the suspension of {address} ({request})").format(
            address=full, request=s.request)))
    if m.state == "cancelled" and c is not None and (start := day(c.date)) is not None \
            and start > today:
        out.append((start, _("cancel {address} ({reason}, {request})").format(
            address=full, reason=c.reason, request=c.request)))
    if m.previous and (when := day(m.previous[-1].date)) is not None and when > today:
        req = m.previous[-1].request
        old = f"{m.previous[-1].address}@{domain}"
        out.append((when, (_("rename {old} -> {new} ({request})") if req else
                           _("rename {old} -> {new}")).format(old=old, new=full, request=req)))
    if (mv := m.moved_from) is not None and (when := day(mv.date)) is not None and when > today:
        out.append((when, (_("move {address} from unit {old} to {new} ({request})")
                           if mv.request else _("move {address} from unit {old} to {new}"))
                    .format(address=full, old=mv.unit, new=m.unit, request=mv.request)))
    return out


def _moves_later(m: Mailbox, today: date) -> bool:
    mv = m.moved_from
    return mv is not None and (when := day(mv.date)) is not None and when > today


def pending_switch(org: Organization, today: date) -> int | None:
    """The index in ``alias_domains`` of the domain that stays the primary until a day after
    ``today`` (a scheduled domain switch), or None. Validate allows one (MG229)."""
    for a in org.alias_domains:
        if (end := day(a.primary_until)) is not None and end > today:
            return a.index
    return None


def served_on(org: Organization, today: date) -> set[str]:
    """The domains that receive mail on ``today`` (lower case): the primary (before a
    scheduled switch, the old one) and the alias domains whose ``until`` is ahead."""
    now, _steps = _organization(org, today)
    return {now.domain.lower(), *now.live_alias_domains(today)}


def _organization(org: Organization, today: date) -> tuple[Organization, list[tuple[date, str]]]:
    """The organisation on ``today``: before a scheduled switch the old domain is still the
    primary and the new one not yet a domain of ours; the alias periods still to end."""
    steps: list[tuple[date, str]] = []
    for a in org.alias_domains:
        if (end := day(a.until)) is not None and end > today:
            steps.append((end, (_("alias domain {domain} stops receiving ({request})")
                                if a.request else _("alias domain {domain} stops receiving"))
                          .format(domain=a.domain, request=a.request)))
    i = pending_switch(org, today)
    if i is None:
        return org, steps
    old = org.alias_domains[i]
    when = day(old.primary_until)
    assert when is not None
    keep = (_("{domain} receives until {day}") if old.until else
            _("{domain} receives for ever")).format(domain=old.domain, day=old.until)
    steps.append((when, (_("primary domain {old} -> {new} ({keep}) ({request})")
                         if old.request else _("primary domain {old} -> {new} ({keep})"))
                  .format(old=old.domain, new=org.domain, keep=keep, request=old.request)))
    others = tuple(a for a in org.alias_domains if a.index != i)
    return replace(org, domain=old.domain, alias_domains=others), steps


def as_of(d: Directory, today: date) -> tuple[Directory, tuple[str, ...]]:
    """``d`` as it must be on ``today`` (future steps not yet taken), and the steps to come
    as "YYYY-MM-DD what (why)" lines, by date."""
    org, scheduled = _organization(d.organization, today)
    boxes: list[Mailbox] | None = None
    for i, m in enumerate(d.mailboxes):
        if m.suspended is None and m.cancelled is None and not m.previous \
                and m.moved_from is None:
            continue  # the common case, 50,000 times
        steps = _steps(org.domain, m, today)
        state = effective_state(m, today)
        if not steps and state == m.state:
            continue
        scheduled += steps
        now = m
        if state != m.state:
            now = replace(now, state=state)
        if m.previous and (when := day(m.previous[-1].date)) is not None and when > today:
            # not renamed yet: the entry keeps the previous address until the day
            now = replace(now, address=m.previous[-1].address, previous=m.previous[:-1])
        if _moves_later(m, today):
            assert m.moved_from is not None
            now = replace(now, unit=m.moved_from.unit)  # not moved yet: the old unit
        if now is not m:
            if boxes is None:
                boxes = list(d.mailboxes)
            boxes[i] = now
    lines = tuple(f"{when.isoformat()} {what}" for when, what in sorted(scheduled))
    if boxes is None and org is d.organization:
        return d, lines
    return replace(d, organization=org,
                   mailboxes=d.mailboxes if boxes is None else tuple(boxes)), lines
