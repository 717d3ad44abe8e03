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
from mailgov.i18n import N_, _, ngettext
from mailgov.plan import Attrs, Change, Plan, shown

FOLD_AFTER = 10  # a (unit, kind) list longer than this is folded
MAX_LINES = 3000  # GitHub/GitLab comments are limited (~65k characters)
_SHOW_VALUES = 3  # values shown per attribute before "… +N"

_WORDS = {  # translated where shown
    "create": N_("create"), "modify": N_("modify"), "rename": N_("rename"), "move": N_("move"),
    "suspend": N_("suspend"), "cancel": N_("cancel"), "restore": N_("restore"),
    "archive": N_("archive"), "purge": N_("purge"), "add_member": N_("add list members"),
    "remove_member": N_("remove list members"), "drift": N_("drift (not in the data)"),
}


def _word(kind: str) -> str:
    return _(_WORDS[kind]) if kind in _WORDS else kind


def _short(value: str) -> str:
    """A DN is shown by its first RDN value (uid=natuan,… -> natuan)."""
    if "=" in value and "," in value:
        return value.split(",", 1)[0].split("=", 1)[1]
    return value if len(value) <= 60 else value[:57] + "…"


def _values(values: Sequence[str]) -> str:
    shown = ", ".join(_short(v) for v in values[:_SHOW_VALUES])
    more = len(values) - _SHOW_VALUES
    return shown + (f" … +{more}" if more > 0 else "") if values else _("(none)")


def _attr_changes(c: Change, skip: frozenset[str] = frozenset()) -> list[str]:
    """One phrase per changed attribute; ``skip`` names attributes the caller's lead covers."""
    before: Attrs = c.before or {}
    out = []
    for name, values in c.replace.items():
        if name in skip:
            continue
        if name == "pwdAccountLockedTime":
            out.append(_("login locked") if ADMIN_LOCK in values else _("lock set"))
            continue
        out.append(f"{name} {_values(before.get(name, ()))} → {_values(values)}")
    for name, values in c.add.items():
        if name not in skip:
            out.append(f"{name} +{_values(values)}")
    for name, values in c.delete.items():
        if name in skip:
            continue
        if name == "pwdAccountLockedTime":
            out.append(_("login unlocked"))
        elif values:
            out.append(f"{name} −{_values(values)}")
        else:
            out.append(_("{name} removed ({values})").format(
                name=name, values=_values(before.get(name, ()))))
    return out


# What the lead of a suspend, cancel or restore already says (the lock and mailEnabled).
_LEAD_ATTRS = frozenset({"pwdAccountLockedTime", "mailEnabled"})


def describe(c: Change) -> str:
    """What the change does, in a few words."""
    if c.kind == "create":
        after = c.after or {}
        if "uid" in after:
            if after.get("mailEnabled") == ("FALSE",):
                return _("new mailbox (cancelled)")
            if after.get("pwdAccountLockedTime"):
                return _("new mailbox (suspended)")
            return _("new mailbox (active)")
        if "member" in after:
            return _("new list, {n} member(s)").format(n=len(after["member"]))
        if "mail" in after:
            return _("new unit mailbox")
        return _("new container")
    if c.kind == "rename" and "cn" in (c.before or {}):  # a renamed unit's delegates group
        return _("renamed from {old} (its unit was renamed; members stay)").format(
            old=_values(c.before["cn"]))
    if c.kind == "rename":
        old = (c.before or {}).get("uid", ())
        return _("renamed from {old} (the old address stays an alias, the store "
                 "stays)").format(old=_values(old))
    if c.kind in ("add_member", "remove_member"):
        values = (c.add if c.kind == "add_member" else c.delete).get("member", ())
        sign = "+" if c.kind == "add_member" else "−"
        return _("{sign}{n} member(s): {values}").format(sign=sign, n=len(values),
                                                           values=_values(values))
    if c.kind == "archive":
        return _("archive the store {store}").format(store=c.store)
    if c.kind == "purge":
        return _("delete the entry and the store {store}").format(store=c.store)
    if c.kind == "drift":
        return _("not in the data")
    lead = {"suspend": N_("suspended: login locked, mail still delivered"),
            "cancel": N_("cancelled: mail refused, login locked"),
            "restore": N_("restored")}.get(c.kind)
    if lead:  # the lock and mailEnabled are what the lead says; show only the rest
        parts = _attr_changes(c, _LEAD_ATTRS)
        return _(lead) + (f" ({'; '.join(parts)})" if parts else "")
    return "; ".join(_attr_changes(c)) or _word(c.kind)


def line(c: Change) -> str:
    reason = f" ({shown(c.reason)})" if c.reason else ""
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
           + (ngettext("{n} change", "{n} changes", total).format(n=total) if total
              else _("no changes"))]
    if plan.refusals:
        out.append("")
        out += [_("**Refused: {refusal}**  ").format(refusal=r) for r in plan.refusals]
        out.append("")
        out.append(_("**Nothing will be applied until the data is fixed or the rail is "
                     "overridden on purpose.**"))
    if plan.notes:  # what the plan was judged by (guards, date): a reviewer checks these
        out.append("")
        out += [_("_Note: {note}_  ").format(note=n) for n in plan.notes]
    if plan.scheduled:  # dated changes: applied by the plan of their day, not by this one
        out += ["", _("**Scheduled** ({n}; applied from their day):").format(
            n=len(plan.scheduled)), ""]
        out += [f"- {s}" for s in plan.scheduled[:FOLD_AFTER * 10]]
        if len(plan.scheduled) > FOLD_AFTER * 10:
            out.append(_("- … and {n} more (--format json lists them all)").format(
                n=len(plan.scheduled) - FOLD_AFTER * 10))
    if counts:
        out += ["", _("| change | count |"), "|---|---:|"]
        out += [f"| {_word(k)} | {n} |" for k, n in counts.items()]
        out.append(_("| **total changes** | **{n}** |").format(n=total))
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
        label = unit or _("(directory: containers)")
        if unit and names.get(unit):
            label = f"{unit} — {names[unit]}"
        emit(["", f"#### {label}"])
        for kind, group in groupby(in_unit, key=lambda c: c.kind):
            items = [line(c) for c in group]
            head = f"{_word(kind)} ({len(items)})"
            if len(items) > fold_after:
                emit(["", f"<details><summary>{head}</summary>", "", *items, "", "</details>"])
            else:
                emit(["", f"**{head}**", "", *items])
    if plan.drift:
        removing = any(c.kind == "drift" for c in plan.changes)
        what = (_("removed by this plan") if removing else
                _("reported only; removed with --remove-drift"))
        items = [line(c) for c in plan.drift]
        emit(["", ngettext("#### Drift: {n} entry the data does not explain ({what})",
                           "#### Drift: {n} entries the data does not explain ({what})",
                           len(items)).format(n=len(items), what=what), ""])
        if len(items) > fold_after:
            emit([_("<details><summary>{n} entries</summary>").format(n=len(items)), "",
                  *items, "", "</details>"])
        else:
            emit(items)
    if budget[0] == 0:
        out += ["", _("… cut at {n} lines; `mailgov plan --format json` has all.").format(
            n=max_lines)]
    return "\n".join(out) + "\n"


def render_json(plan: Plan) -> str:
    return json.dumps(plan.to_dict(), ensure_ascii=False, indent=1)
