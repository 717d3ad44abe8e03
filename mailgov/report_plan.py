"""A plan for humans (Markdown, for a pull-request comment) and for programs (JSON).

Markdown layout: refusals first, in bold; then the counts by change kind (a table); then the
changes grouped by unit and kind, one line each, ``subject: what changes (reason)``; long
lists folded in ``<details>``; drift last. Pure: text in, text out.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from itertools import groupby

from mailgov.directory import ADMIN_LOCK
from mailgov.plan import Attrs, Change, Plan

FOLD_AFTER = 10  # a (unit, kind) list longer than this is folded
MAX_LINES = 3000  # GitHub/GitLab comments are limited (~65k characters)
_SHOW_VALUES = 3  # values shown per attribute before "… +N"

_WORDS = {
    "create": "create", "modify": "modify", "rename": "rename", "move": "move",
    "suspend": "suspend", "cancel": "cancel", "restore": "restore", "archive": "archive",
    "purge": "purge", "add_member": "add list members", "remove_member": "remove list members",
    "drift": "drift (not in the data)",
}


def _short(value: str) -> str:
    """A DN is shown by its first RDN value (uid=natuan,… -> natuan)."""
    if "=" in value and "," in value:
        return value.split(",", 1)[0].split("=", 1)[1]
    return value if len(value) <= 60 else value[:57] + "…"


def _values(values: Sequence[str]) -> str:
    shown = ", ".join(_short(v) for v in values[:_SHOW_VALUES])
    more = len(values) - _SHOW_VALUES
    return shown + (f" … +{more}" if more > 0 else "") if values else "(none)"


def _attr_changes(c: Change) -> list[str]:
    before: Attrs = c.before or {}
    out = []
    for name, values in c.replace.items():
        if name == "pwdAccountLockedTime":
            out.append("login locked" if ADMIN_LOCK in values else "lock set")
            continue
        out.append(f"{name} {_values(before.get(name, ()))} → {_values(values)}")
    for name, values in c.add.items():
        out.append(f"{name} +{_values(values)}")
    for name, values in c.delete.items():
        if name == "pwdAccountLockedTime":
            out.append("login unlocked")
        elif values:
            out.append(f"{name} −{_values(values)}")
        else:
            out.append(f"{name} removed ({_values(before.get(name, ()))})")
    return out


def describe(c: Change) -> str:
    """What the change does, in a few words."""
    if c.kind == "create":
        after = c.after or {}
        if "uid" in after:
            state = ("cancelled" if after.get("mailEnabled") == ("FALSE",) else
                     "suspended" if after.get("pwdAccountLockedTime") else "active")
            return f"new mailbox ({state})"
        if "member" in after:
            return f"new list, {len(after['member'])} member(s)"
        if "mail" in after:
            return "new unit mailbox"
        return "new container"
    if c.kind == "rename" and "cn" in (c.before or {}):  # a renamed unit's delegates group
        return f"renamed from {_values(c.before['cn'])} (its unit was renamed; members stay)"
    if c.kind == "rename":
        old = (c.before or {}).get("uid", ())
        return f"renamed from {_values(old)} (the old address stays an alias, the store stays)"
    if c.kind in ("add_member", "remove_member"):
        values = (c.add if c.kind == "add_member" else c.delete).get("member", ())
        sign = "+" if c.kind == "add_member" else "−"
        return f"{sign}{len(values)} member(s): {_values(values)}"
    if c.kind == "archive":
        return f"archive the store {c.store}"
    if c.kind == "purge":
        return f"delete the entry and the store {c.store}"
    if c.kind == "drift":
        return "not in the data"
    lead = {"suspend": "suspended: login locked, mail still delivered",
            "cancel": "cancelled: mail refused, login locked",
            "restore": "restored"}.get(c.kind)
    parts = _attr_changes(c)
    if lead:  # the lock and mailEnabled are what the lead says; show only the rest
        parts = [p for p in parts if not p.startswith(("login ", "lock ", "mailEnabled "))]
        return lead + (f" ({'; '.join(parts)})" if parts else "")
    return "; ".join(parts) or c.kind


def line(c: Change) -> str:
    reason = f" ({c.reason})" if c.reason else ""
    return f"- `{c.subject}`: {describe(c)}{reason}"


# Report order inside a unit: what a reviewer reads first (a rename before its modify).
_ORDER = ("create", "rename", "move", "modify", "suspend", "cancel", "restore", "add_member",
          "remove_member", "archive", "purge", "drift")


def _kind_order(kind: str) -> int:
    return _ORDER.index(kind) if kind in _ORDER else len(_ORDER)


def render_markdown(plan: Plan, *, title: str = "mailgov plan",
                    unit_names: Mapping[str, str] | None = None,
                    fold_after: int = FOLD_AFTER, max_lines: int = MAX_LINES) -> str:
    names = unit_names or {}
    counts = plan.counts()
    total = len(plan.changes)
    out = [f"### {title}: "
           + (f"{total} change{'s' if total != 1 else ''}" if total else "no changes")]
    if plan.refusals:
        out.append("")
        out += [f"**Refused: {r}**  " for r in plan.refusals]
        out.append("")
        out.append("**Nothing will be applied until the data is fixed or the rail is "
                   "overridden on purpose.**")
    if plan.notes:  # what the plan was judged by (guards, date): a reviewer checks these
        out.append("")
        out += [f"_Note: {n}_  " for n in plan.notes]
    if plan.scheduled:  # dated changes: applied by the plan of their day, not by this one
        out += ["", f"**Scheduled** ({len(plan.scheduled)}; applied from their day):", ""]
        out += [f"- {s}" for s in plan.scheduled[:FOLD_AFTER * 10]]
        if len(plan.scheduled) > FOLD_AFTER * 10:
            out.append(f"- … and {len(plan.scheduled) - FOLD_AFTER * 10} more "
                       "(--format json lists them all)")
    if counts:
        out += ["", "| change | count |", "|---|---:|"]
        out += [f"| {_WORDS.get(k, k)} | {n} |" for k, n in counts.items()]
        out.append(f"| **total changes** | **{total}** |")
    budget = [max_lines]

    def emit(lines: list[str]) -> None:
        for text in lines:
            if budget[0] == 0:
                return
            budget[0] -= 1
            out.append(text)

    # Stable sort: inside a (unit, kind) group the apply order is kept.
    ordered = sorted((c for c in plan.changes if c.kind != "drift"),
                     key=lambda c: (c.unit or "", _kind_order(c.kind)))
    for unit, in_unit in groupby(ordered, key=lambda c: c.unit or ""):
        label = unit or "(directory: containers)"
        if unit and names.get(unit):
            label = f"{unit} — {names[unit]}"
        emit(["", f"#### {label}"])
        for kind, group in groupby(in_unit, key=lambda c: c.kind):
            items = [line(c) for c in group]
            head = f"{_WORDS.get(kind, kind)} ({len(items)})"
            if len(items) > fold_after:
                emit(["", f"<details><summary>{head}</summary>", "", *items, "", "</details>"])
            else:
                emit(["", f"**{head}**", "", *items])
    if plan.drift:
        removing = any(c.kind == "drift" for c in plan.changes)
        what = ("removed by this plan" if removing else
                "reported only; removed with --remove-drift")
        items = [line(c) for c in plan.drift]
        emit(["", f"#### Drift: {len(items)} entr{'ies' if len(items) != 1 else 'y'} the data "
              f"does not explain ({what})", ""])
        if len(items) > fold_after:
            emit([f"<details><summary>{len(items)} entries</summary>", "", *items, "",
                  "</details>"])
        else:
            emit(items)
    if budget[0] == 0:
        out += ["", f"… cut at {max_lines} lines; `mailgov plan --format json` has all."]
    return "\n".join(out) + "\n"


def render_json(plan: Plan) -> str:
    return json.dumps(plan.to_dict(), ensure_ascii=False, indent=1)
