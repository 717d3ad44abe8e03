"""`mailgov add|cancel|suspend|restore|move|rename|set|import|export` (issue 15).

Every edit command works on data/mailboxes.yaml by default (``--data FILE``), takes
``--request`` (the approving document) and ``--dry-run`` (print the diff, write nothing).
A refused edit exits 1, says why (rule id and text of each problem) and leaves every file as
it was; a usage error exits 2. The edits themselves: mailgov/mailbox_edit.py; imports and
exports: mailgov/importer.py.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable

from mailgov import args as arg_types
from mailgov import i18n
from mailgov.i18n import _

DEFAULT_DATA = "data/mailboxes.yaml"
SubParsers = argparse._SubParsersAction  # type: ignore[type-arg]
REASONS = ("retired", "transferred", "left", "deceased", "duplicate", "other")


class EditCliError(Exception):
    """A user error: `mailgov: error: …`, exit ``code`` (1 refused, 2 usage)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def guarded(cmd: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``cmd`` with its user errors printed as `mailgov: error: …` (no traceback)."""

    def run(args: argparse.Namespace) -> int:
        try:
            return cmd(args)
        except EditCliError as exc:
            print(i18n.error_line(exc), file=sys.stderr)
            return exc.code

    return run



def _common(p: argparse.ArgumentParser, *, request_required: bool = False,
            dated: bool = True, date_help: str | None = None) -> None:
    """The options every edit command has; ``date_help``: a step whose date cannot be
    scheduled says so (help texts are translated by i18n.localise)."""
    p.add_argument("--data", default=DEFAULT_DATA,
                   help=f"the data file (default {DEFAULT_DATA})")
    p.add_argument("--request", required=request_required, metavar="REF",
                   help="the approving document, e.g. 45/QĐ-TCCB (the plan cites it)")
    if dated:
        p.add_argument("--date", type=arg_types.day, metavar="YYYY-MM-DD",
                       help=date_help or ("when it takes effect (default today; a later day "
                                          "schedules it)"))
    p.add_argument("--dry-run", action="store_true",
                   help="print the diff, write nothing")


def add_parsers(sub: SubParsers) -> None:
    from mailgov import importer

    p = sub.add_parser("add", help="add a person (address from the naming policy)",
                       description=("Add a mailbox record for a new person: the address "
                                     "from the naming policy, the next free id, created "
                                     "today; it lands after its unit's last record (in the "
                                     "unit's own file if it has one)."))
    p.add_argument("name", help='full name, surname first ("Nguyễn Văn Long")')
    p.add_argument("--unit", required=True, help="the unit id")
    p.add_argument("--title")
    p.add_argument("--role", choices=("staff", "head", "admin"))
    p.add_argument("--kind", choices=("personal", "affiliate"))
    p.add_argument("--birth", metavar="YYYY-MM")
    p.add_argument("--id-digits", metavar="D")
    # `created` cannot be dated ahead (MG304): a record exists from the day it is added
    _common(p, date_help="the day it is created (default today; not a later day: MG304)")
    p.set_defaults(func=guarded(cmd_add))

    p = sub.add_parser("cancel", help="cancel a mailbox (state: cancelled)")
    p.add_argument("address")
    p.add_argument("--reason", required=True, choices=REASONS)
    _common(p, request_required=True)
    p.set_defaults(func=guarded(cmd_cancel))

    p = sub.add_parser("suspend", help="suspend a mailbox (state: suspended)")
    p.add_argument("address")
    p.add_argument("--reason", required=True, help="why, e.g. Nghỉ thai sản")
    p.add_argument("--until", type=arg_types.day, metavar="YYYY-MM-DD",
                   help="the day it ends (the restore, scheduled)")
    _common(p, request_required=True)
    p.set_defaults(func=guarded(cmd_suspend))

    p = sub.add_parser("restore", help="end a suspension, undo a cancel")
    p.add_argument("address")
    _common(p)
    p.set_defaults(func=guarded(cmd_restore))

    p = sub.add_parser("move", help="move a person to another unit")
    p.add_argument("address")
    p.add_argument("unit")
    _common(p, dated=False)
    p.set_defaults(func=guarded(cmd_move))

    p = sub.add_parser("rename", help=("give a mailbox a new address (the old one stays an "
                                        "alias, then reserved)"))
    p.add_argument("address")
    p.add_argument("--to", metavar="LOCAL", help=("the new address (default: the naming "
                                                   "policy's for --name)"))
    p.add_argument("--name", help="the corrected full name")
    _common(p)
    p.set_defaults(func=guarded(cmd_rename))

    p = sub.add_parser("set", help=("set quota, title or role of a mailbox, or a unit "
                                     "mailbox's quota and delegates"))
    p.add_argument("address", nargs="?", help="the mailbox (or --unit)")
    p.add_argument("--unit", help="the unit whose unit mailbox is set")
    p.add_argument("--quota", metavar="MIB|default")
    p.add_argument("--title", help="empty: none")
    p.add_argument("--role", choices=("staff", "head", "admin"))
    p.add_argument("--delegates", metavar="A,B", help=("the whole list (unit mailbox); "
                                                        "empty: none"))
    _common(p, dated=False)
    p.set_defaults(func=guarded(cmd_set))

    importer.add_parsers(sub)


def run_edit(args: argparse.Namespace, make: Callable[[], object]) -> int:
    """Make an edit (``make`` returns a mailbox_edit.Done) and tell the admin: on a dry run
    the unified diff on stdout (CODEOWNERS's too, when the edit rewrites it); the summary
    and the edit's notes on stderr. Every edit of the data file reports
    this way (also ``mailgov domain migrate`` and ``mailgov unit rename|merge``)."""
    from mailgov.edit import EditError

    try:
        done = make()
    except EditError as exc:
        raise EditCliError(str(exc), 1) from None
    except OSError as exc:
        raise EditCliError(f"{args.data}: {exc.strerror or exc}") from None
    if args.dry_run:
        print(done.diff, end="")  # type: ignore[attr-defined]
        print(_("{path}: {what} (dry run: nothing written)").format(
            path=args.data, what=done.summary), file=sys.stderr)  # type: ignore[attr-defined]
    else:
        print(_("{path}: {what}; review with git diff, then plan").format(
            path=args.data, what=done.summary), file=sys.stderr)  # type: ignore[attr-defined]
    for note in done.edit.notes:  # type: ignore[attr-defined]  # CODEOWNERS
        print(note, file=sys.stderr)
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    from mailgov import mailbox_edit as me

    if args.birth is not None and not re.fullmatch(r"[0-9]{4}-(0[1-9]|1[0-2])", args.birth):
        raise EditCliError(_("--birth {value!r} must be YYYY-MM").format(value=args.birth))
    if args.id_digits is not None and not re.fullmatch(r"[0-9]{1,6}", args.id_digits):
        raise EditCliError(_("--id-digits {value!r} must be 1 to 6 digits").format(
            value=args.id_digits))
    person = me.NewPerson(args.name.strip(), args.unit, args.title, args.role, args.kind,
                          args.request, args.birth, args.id_digits)
    return run_edit(args, lambda: me.add(args.data, [person], on=args.date, dry_run=args.dry_run))


def cmd_cancel(args: argparse.Namespace) -> int:
    from mailgov import mailbox_edit as me

    return run_edit(args, lambda: me.cancel(args.data, args.address, reason=args.reason,
                                        request=args.request, on=args.date,
                                        dry_run=args.dry_run))


def cmd_suspend(args: argparse.Namespace) -> int:
    from mailgov import mailbox_edit as me

    return run_edit(args, lambda: me.suspend(args.data, args.address, reason=args.reason,
                                         request=args.request, on=args.date,
                                         until=args.until, dry_run=args.dry_run))


def cmd_restore(args: argparse.Namespace) -> int:
    from mailgov import mailbox_edit as me

    return run_edit(args, lambda: me.restore(args.data, args.address, request=args.request,
                                         on=args.date, dry_run=args.dry_run))


def cmd_move(args: argparse.Namespace) -> int:
    from mailgov import mailbox_edit as me

    return run_edit(args, lambda: me.move(args.data, args.address, args.unit,
                                      request=args.request, dry_run=args.dry_run))


def cmd_rename(args: argparse.Namespace) -> int:
    from mailgov import mailbox_edit as me

    return run_edit(args, lambda: me.rename(args.data, args.address, to=args.to, name=args.name,
                                        request=args.request, on=args.date,
                                        dry_run=args.dry_run))


def cmd_set(args: argparse.Namespace) -> int:
    from mailgov import mailbox_edit as me

    if (args.address is None) == (args.unit is None):
        raise EditCliError(_("give a mailbox address or --unit ID"))
    if args.unit is not None:
        if args.title is not None or args.role is not None:
            raise EditCliError(_("--title and --role are a mailbox's: give its address"))
        delegates = None
        if args.delegates is not None:
            delegates = [x.strip() for x in args.delegates.split(",") if x.strip()]
        return run_edit(args, lambda: me.set_unit(args.data, args.unit, delegates=delegates,
                                              quota=args.quota, request=args.request,
                                              dry_run=args.dry_run))
    if args.delegates is not None:
        raise EditCliError(_("--delegates are a unit mailbox's: give --unit ID"))
    return run_edit(args, lambda: me.set_mailbox(args.data, args.address, quota=args.quota,
                                             title=args.title, role=args.role,
                                             request=args.request, dry_run=args.dry_run))
