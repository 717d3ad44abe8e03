"""`mailgov report`, `mailgov propose`, `mailgov publish` and `mailgov collect` (issue 17).

Each reads the data file (validated first: a data file with problems is refused, exit 1) and
writes files or standard output; none of them changes the data file or a server. User errors
are one line, `mailgov: error: …`, exit 2, and nothing is written.
"""

from __future__ import annotations

import argparse
import difflib
import os
import shlex
import sys
from datetime import date
from pathlib import Path
from typing import Any

from mailgov import args as arg_types
from mailgov import i18n, usage
from mailgov.i18n import LANGUAGES, _, ngettext

DEFAULT_DATA = "data/mailboxes.yaml"
SubParsers = argparse._SubParsersAction  # type: ignore[type-arg]


class UsageCliError(Exception):
    pass



def _checked(path: str, today: date | None = None) -> Any:
    from mailgov.validate import validate

    result = validate(path, today=today)
    if not result.ok or result.directory is None:
        # With the error on standard error: standard output is the report (or `> file`).
        for p in result.problems:
            print(p.format(), file=sys.stderr)
        raise UsageCliError(ngettext("fix {path} first ({count} problem)",
                                     "fix {path} first ({count} "
                                     "problems)", len(result.problems)).format(
            path=path, count=len(result.problems)))
    return result


def _unit(result: Any, unit: str | None, path: str) -> None:
    if unit is None:
        return
    ids = [u.id for u in result.directory.units]
    if unit not in ids:
        near = difflib.get_close_matches(unit, ids, n=3)
        hint = _("; did you mean {names}?").format(names=', '.join(near)) if near else ""
        raise UsageCliError(_("--unit {unit!r} names no unit in {path}{hint}").format(
            unit=unit, path=path, hint=hint))


def _snapshots(args: argparse.Namespace, result: Any, today: date
               ) -> tuple[usage.Snapshot, usage.Snapshot | None]:
    if args.snapshot:
        current = usage.load(args.snapshot)
        previous = usage.load(args.previous) if args.previous else None
    else:
        folder = Path(args.snapshot_dir)
        if not folder.is_dir():
            raise UsageCliError(_("--snapshot-dir {folder}: no such folder (mailgov collect "
                                  "writes snapshots there)").format(folder=folder))
        files = [p for d, p in usage.snapshots_in(folder) if d <= today]
        if not files:
            raise UsageCliError(_("{folder}: no snapshot usage-YYYY-MM-DD.json up to "
                                  "{today}").format(
                folder=folder, today=today))
        current = usage.load(files[-1])
        previous = (usage.load(args.previous) if args.previous
                    else usage.load(files[-2]) if len(files) > 1 else None)
    for snap in (current, previous):
        if snap is not None:
            usage.check_against(snap, result.directory, today)
    if previous is not None and previous.day >= current.day:
        raise UsageCliError(_("--previous {path} ({day}) is not older than the snapshot "
                              "({current})").format(
            path=previous.path, day=previous.day, current=current.day))
    return current, previous


def _write(out: str | None, text: str) -> None:
    if out is None or out == "-":
        sys.stdout.write(text)
        return
    target = Path(out)
    if not target.parent.is_dir():
        raise UsageCliError(_("--out {out}: folder {parent} does not exist").format(
            out=out, parent=target.parent))
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)  # whole or nothing: a reader never sees half a report


def _run(func: Any, args: argparse.Namespace) -> int:
    try:
        code: int = func(args)
    except (UsageCliError, usage.SnapshotError) as exc:
        print(i18n.error_line(exc), file=sys.stderr)
        return 2
    return code


# --------------------------------------------------------------------------- report


def add_report(sub: SubParsers) -> None:
    p = sub.add_parser(
        "report", help="the usage evaluation report (HTML, CSV, Markdown)",
        description="The yearly evaluation of official e-mail use from a usage snapshot "
        "(mailgov collect): staff with a mailbox of the headcount, regular users (logged in "
        "and sent within the window), inactive mailboxes, storage buckets, initial passwords "
        "overdue, unit mailbox read, directory published, ranking; docs/usage.md.")
    p.add_argument("data", nargs="?", default=DEFAULT_DATA,
                   help=f"the data file (default {DEFAULT_DATA})")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--snapshot", metavar="FILE", help="one snapshot file")
    src.add_argument("--snapshot-dir", metavar="DIR", default=usage.DEFAULT_DIR,
                     help=f"the newest snapshot of DIR (default {usage.DEFAULT_DIR}); the "
                     "one before it is the previous")
    p.add_argument("--previous", metavar="FILE",
                   help="compare with this snapshot (trend) instead")
    p.add_argument("--format", choices=("html", "csv", "md"), default="html")
    p.add_argument("--lang", choices=LANGUAGES, default="vi")
    p.add_argument("--unit", metavar="ID",
                   help="a unit's own report: its figures and one row per mailbox")
    p.add_argument("--conceal-names", action="store_true",
                   help="numbers instead of names and addresses in per-mailbox rows")
    p.add_argument("--window", type=int, choices=usage.WINDOWS, default=usage.DEFAULT_WINDOW,
                   help="days of the regular-use window (default 30)")
    p.add_argument("--out", metavar="FILE", help="write here instead of standard output")
    p.add_argument("--today", type=arg_types.day, default=None, metavar="YYYY-MM-DD",
                   help="today's date (a snapshot after it is refused)")
    p.set_defaults(func=lambda a: _run(cmd_report, a))


def cmd_report(args: argparse.Namespace) -> int:
    from mailgov import usage_report

    today = args.today or date.today()
    result = _checked(args.data, today)
    _unit(result, args.unit, args.data)
    current, previous = _snapshots(args, result, today)
    ev = usage.evaluate(result.directory, current, result.unit_locals, args.window)
    before = None if previous is None else usage.evaluate(
        result.directory, previous, result.unit_locals, args.window)
    opts = usage_report.Options(args.lang, args.unit, args.conceal_names)
    if args.format == "html":
        text = usage_report.render_html(ev, before, opts)
    elif args.format == "csv":
        text = usage_report.render_csv(ev, opts)
    else:
        text = usage_report.render_markdown(ev, before, opts)
    _write(args.out, text)
    for gap in ev.gaps:
        print(_("mailgov: warning: not collected: {gap}").format(gap=gap), file=sys.stderr)
    return 0




# --------------------------------------------------------------------------- propose


def add_propose(sub: SubParsers) -> None:
    p = sub.add_parser(
        "propose", help="propose suspending inactive mailboxes (a patch, never an apply)",
        description="From a usage snapshot, write a patch against the data file that "
        "suspends the mailboxes inactive beyond policy.inactivity_lock_days and those whose "
        "initial password is unchanged past the deadline. The approving document is left "
        "as SỐ-VĂN-BẢN for the admin: the data file does not validate until it is filled "
        "in. Nothing is applied; apply the patch with `git apply` on a branch.")
    p.add_argument("data", nargs="?", default=DEFAULT_DATA,
                   help=f"the data file (default {DEFAULT_DATA})")
    p.add_argument("--snapshot", metavar="FILE", required=True, help="the usage snapshot")
    p.add_argument("--out", metavar="PATCH", help="write the patch here (default: stdout)")
    p.add_argument("--today", type=arg_types.day, default=None, metavar="YYYY-MM-DD")
    p.set_defaults(func=lambda a: _run(cmd_propose, a))


def cmd_propose(args: argparse.Namespace) -> int:
    from mailgov import proposals

    today = args.today or date.today()
    result = _checked(args.data, today)
    snap = usage.load(args.snapshot)
    usage.check_against(snap, result.directory, today)
    found = proposals.find(result.directory, snap)
    text = Path(args.data).read_text(encoding="utf-8")
    # Paths in the patch relative to where the admin runs it (the repository root).
    rel = os.path.relpath(args.data)
    diff, skipped = proposals.patch(text, args.data if rel.startswith("..") else rel, found,
                                    snap.day)
    if diff:
        _write(args.out, diff)
    s = proposals.summary(found)
    print(_("mailgov: {inactive} inactive, {overdue} initial password overdue; {patched} in "
            "the patch").format(inactive=len(s["inactive"]), overdue=len(s["initial_password"]),
                                patched=len(found) - len(skipped))
          + (f" ({args.out})" if args.out and diff else ""), file=sys.stderr)
    for p in [*skipped, *(p for p in found if p.note and p not in skipped)]:
        print(_("mailgov: warning: {address}: {note}").format(
            address=p.address, note=p.note), file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- publish


def add_publish(sub: SubParsers) -> None:
    p = sub.add_parser(
        "publish", help="the public directory for the portal (HTML, CSV, vCard 4.0)",
        description="Write the published directory: index.html (searchable in the page, no "
        "network), danh-ba.csv and danh-ba.vcf, and units/<id>.csv and .vcf per unit. "
        "Public fields only (name, title, unit, address; unit mailboxes and lists); active "
        "mailboxes only. docs/usage.md, 'Published directory'.")
    p.add_argument("data", nargs="?", default=DEFAULT_DATA,
                   help=f"the data file (default {DEFAULT_DATA})")
    p.add_argument("--out", metavar="DIR", required=True, help="folder to write (created)")
    p.add_argument("--lang", choices=LANGUAGES, default="vi")
    p.set_defaults(func=lambda a: _run(cmd_publish, a))


def cmd_publish(args: argparse.Namespace) -> int:
    from mailgov import publish

    result = _checked(args.data)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageCliError(_("--out {out}: not a folder").format(out=out))
    if not out.parent.is_dir():
        raise UsageCliError(_("--out {out}: folder {parent} does not exist").format(
            out=out, parent=out.parent))
    n = publish.write(result.directory, result.unit_locals, out, args.lang)
    print(_("mailgov: {entries} entries, {files} files in {out}").format(
        entries=n['entries'], files=n['files'], out=out), file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- collect


def add_collect(sub: SubParsers) -> None:
    p = sub.add_parser(
        "collect", help="read the mail hosts' usage figures into a dated snapshot",
        description="Run playbooks/usage.yml against the inventory's mail hosts (ANSIBLE_"
        "INVENTORY or ansible.cfg's) and write DIR/usage-DAY.json: logins, messages sent "
        "and received per day, storage against quota, initial passwords unchanged, locks. "
        "A host that cannot be read is named in the snapshot (and here); the others are "
        "still collected. docs/usage.md.")
    p.add_argument("data", nargs="?", default=DEFAULT_DATA,
                   help=f"the data file (default {DEFAULT_DATA})")
    p.add_argument("--snapshot-dir", metavar="DIR", default=usage.DEFAULT_DIR,
                   help=f"where snapshots are kept (default {usage.DEFAULT_DIR})")
    p.add_argument("--day", type=arg_types.day, default=None, metavar="YYYY-MM-DD",
                   help="the last day the snapshot covers (default today)")
    p.add_argument("--prune", action="store_true",
                   help=f"also delete snapshots older than {usage.RETENTION_DAYS} days")
    p.add_argument("--ansible-args", metavar="ARGS", default="",
                   help='options for ansible-playbook, one string (e.g. "--limit mail1 -i '
                   'inventory/production")')
    p.set_defaults(func=lambda a: _run(cmd_collect, a))


def cmd_collect(args: argparse.Namespace) -> int:
    from mailgov import collect

    day = args.day or date.today()
    if day > date.today():
        raise UsageCliError(_("--day {day} is in the future").format(day=day))
    result = _checked(args.data)
    folder = Path(args.snapshot_dir)
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise UsageCliError(_("--snapshot-dir {folder}: not a writable folder (create it 0750, "
                              "outside the git checkout)").format(folder=folder))
    try:
        extra = shlex.split(args.ansible_args)
    except ValueError as exc:
        raise UsageCliError(_("--ansible-args: {error}").format(error=exc)) from None
    try:
        target, doc = collect.collect(folder, result.directory.organization.domain, day, extra,
                                      [])
    except collect.CollectError as exc:
        raise UsageCliError(str(exc)) from None
    gaps = usage.parse(doc, str(target)).gaps
    print(_("mailgov: {count} mailboxes from {ok} of {hosts} hosts into {target}").format(
        count=len(doc['mailboxes']), ok=sum(1 for h in doc['hosts'].values() if h.get('ok')),
        hosts=len(doc['hosts']), target=target), file=sys.stderr)
    for gap in gaps:
        print(_("mailgov: warning: not collected: {gap}").format(gap=gap), file=sys.stderr)
    if args.prune:
        for old in usage.expired(folder, day):
            old.unlink()
            print(_("mailgov: removed {old} (older than {days} days)").format(
                old=old, days=usage.RETENTION_DAYS),
                  file=sys.stderr)
    return 0


def add_parsers(sub: SubParsers) -> None:
    add_report(sub)
    add_propose(sub)
    add_publish(sub)
    add_collect(sub)
