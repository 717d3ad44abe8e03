"""Proposed changes from usage (issue 17 item 4): a patch against the data file, never an apply.

Two findings become a proposal to suspend a mailbox (``state: suspended`` and a ``suspended``
block dated the snapshot's day):

* inactive: no login for more than ``policy.inactivity_lock_days`` (and the mailbox is older
  than that: ``created``, else the initial password's date, says so);
* initial password unchanged past ``first_login_change_days`` (users; administrators have
  their own deadline).

The patch leaves the approving document for the admin: ``request: SỐ-VĂN-BẢN`` does not match
the schema's request pattern, so ``mailgov validate`` (and CI) refuse the data file until a
real decision number replaces it. Nothing here writes the data file or a server; the admin
applies the patch (``git apply``) on a branch and opens a pull request like any other change.
Protected addresses (``policy.protected``) are never proposed.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import yaml

from mailgov.i18n import _
from mailgov.model import Directory, Mailbox
from mailgov.usage import Snapshot, logged_in

PLACEHOLDER = "SỐ-VĂN-BẢN"  # fails the schema's request pattern on purpose
REASONS = {
    "inactive": "Không đăng nhập quá {days} ngày (mailgov propose)",
    "initial_password": "Chưa đổi mật khẩu ban đầu quá {days} ngày (mailgov propose)",
}


@dataclass(frozen=True, slots=True)
class Proposal:
    address: str
    index: int
    finding: str  # inactive | initial_password
    reason: str
    note: str = ""  # what else needs the admin (a head, a delegate), or why it is not patched


def find(directory: Directory, snap: Snapshot) -> list[Proposal]:
    """The mailboxes to propose, in the file's order (one proposal per mailbox)."""
    policy = directory.policy
    day = snap.day
    n = policy.inactivity_lock_days
    first = day - timedelta(days=n - 1)
    out = []
    heads = {u.head: u.id for u in directory.units if u.head}
    delegates = {d: u.id for u in directory.units for d in u.mailbox.delegates}
    for m in directory.mailboxes:
        if m.state != "active" or m.address in policy.protected:
            continue
        row = snap.mailboxes.get(m.address)
        if row is None:  # no figures (a host not collected): never a reason to suspend
            continue
        rules = (policy.password_administrators if m.role == "admin"
                 else policy.password_users)
        deadline = rules.first_login_change_days
        if (row.initial_unchanged and row.initial_since is not None
                and day > row.initial_since + timedelta(days=deadline)):
            out.append(Proposal(m.address, m.index, "initial_password",
                                REASONS["initial_password"].format(days=deadline),
                                _duties(m.address, heads, delegates)))
            continue
        since = _since(m, row.initial_since)
        old_enough = since is None or (day - since).days >= n
        if old_enough and not logged_in(row, first, day):
            out.append(Proposal(m.address, m.index, "inactive",
                                REASONS["inactive"].format(days=n),
                                _duties(m.address, heads, delegates)))
    return out


def _duties(address: str, heads: dict[str, str], delegates: dict[str, str]) -> str:
    """What else the admin must change for the data to validate (a head, a delegate)."""
    notes = []
    if address in heads:
        notes.append(_("head of unit {unit}: name another head").format(unit=heads[address]))
    if address in delegates:
        notes.append(_("delegate of unit {unit}'s mailbox: remove or replace").format(
            unit=delegates[address]))
    return "; ".join(notes)


def _since(m: Mailbox, initial: date | None) -> date | None:
    if m.created:
        try:
            return date.fromisoformat(m.created)
        except ValueError:
            return initial
    return initial


def _mailbox_nodes(text: str) -> list[yaml.MappingNode]:
    root = yaml.compose(text, Loader=yaml.CSafeLoader)
    for key, value in root.value:
        if key.value == "mailboxes" and isinstance(value, yaml.SequenceNode):
            return list(value.value)
    return []


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def patch(text: str, path: str, proposals: list[Proposal], day: date
          ) -> tuple[str, list[Proposal]]:
    """A unified diff (``git apply``-able, a/ b/ paths) and the proposals it could not hold."""
    lines = text.splitlines(keepends=True)
    nodes = _mailbox_nodes(text)
    edits: list[tuple[int, int, list[str]]] = []  # (first line, lines replaced, new lines)
    skipped = []
    for p in proposals:
        node = nodes[p.index] if p.index < len(nodes) else None
        if not isinstance(node, yaml.MappingNode) or node.flow_style or not node.value:
            skipped.append(Proposal(p.address, p.index, p.finding, p.reason,
                                    "not a block mapping: edit by hand"))
            continue
        keys = {k.value: (k, v) for k, v in node.value}
        indent = " " * node.value[0][0].start_mark.column
        if "suspended" in keys:  # an active mailbox with a leftover block: a human decides
            skipped.append(Proposal(p.address, p.index, p.finding, p.reason,
                                    "already has a suspended block: edit by hand"))
            continue
        block = (f"{indent}suspended: {{ date: {day.isoformat()}, reason: {_quote(p.reason)},"
                 f" request: {PLACEHOLDER} }}  # mailgov propose: fill in the request\n")
        if "state" in keys:
            k, v = keys["state"]
            edits.append((k.start_mark.line, v.end_mark.line - k.start_mark.line + 1,
                          [f"{indent}state: suspended\n", block]))
        else:
            last = node.value[-1][1].end_mark
            # A nested block value ends at column 0 of the line after it; a scalar mid-line.
            at = last.line if last.column == 0 else last.line + 1
            edits.append((at, 0, [f"{indent}state: suspended\n", block]))
    new = list(lines)
    for first, count, repl in sorted(edits, reverse=True):
        new[first:first + count] = repl
    diff = difflib.unified_diff(lines, new, f"a/{path}", f"b/{path}")
    return "".join(diff), skipped


def summary(proposals: list[Proposal]) -> dict[str, Any]:
    return {"inactive": [p.address for p in proposals if p.finding == "inactive"],
            "initial_password": [p.address for p in proposals
                                 if p.finding == "initial_password"]}
