"""The `mailgov` command.

Exit codes: 0 success, 1 the data has problems, 2 usage error (bad option, unknown unit,
unusable input). User errors print one clear message, never a traceback.

Adding a command (plan, apply, report, dns …): write ``_add_<name>(sub)`` that creates the
sub-parser and sets ``func`` to a function ``(args) -> int``, and call it in
:func:`build_parser`. Raise :class:`CliError` for anything the user has to fix.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from collections.abc import Sequence
from datetime import date
from typing import Any

from mailgov import __version__
from mailgov import dns as dns_command
from mailgov.naming import NamingError, NamingPolicy, Person, unit_locals
from mailgov.validate import Result, taken_locals, validate

DEFAULT_DATA = "data/mailboxes.yaml"

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A user error: printed as `mailgov: error: <message>`, exit code ``code``."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2))


def _report_problems(result: Result, fmt: str) -> None:
    if fmt == "json":
        _print_json({"path": result.path, "ok": False,
                     "problems": [p.as_dict() for p in result.problems]})
        return
    for p in result.problems:
        print(p.format())
    n = len(result.problems)
    print(f"{n} problem{'s' if n != 1 else ''} in {result.path}", file=sys.stderr)


def _date_arg(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date YYYY-MM-DD") from None


# --------------------------------------------------------------------------- validate


def _add_validate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("validate", help="check the data file (shape and meaning)",
                       description="Check the data file. Exit 0 and a summary when it is "
                       "valid, exit 1 and every problem (PATH:LINE:COL: RULE-ID message) "
                       "when not. Rule ids: docs/rules.md.")
    p.add_argument("path", nargs="?", default=DEFAULT_DATA,
                   help=f"the data file (default {DEFAULT_DATA})")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--today", type=_date_arg, default=None, metavar="YYYY-MM-DD",
                   help="check dates against this day instead of today")
    p.set_defaults(func=cmd_validate)


def cmd_validate(args: argparse.Namespace) -> int:
    result = validate(args.path, today=args.today)
    if not result.ok:
        _report_problems(result, args.format)
        return EXIT_PROBLEMS
    s = result.summary()
    if args.format == "json":
        _print_json({"path": result.path, "ok": True, "problems": [], "summary": s})
        return EXIT_OK
    kinds = ", ".join(f"{k} {v}" for k, v in s["by_kind"].items())
    states = ", ".join(f"{k} {v}" for k, v in s["by_state"].items())
    print(f"{result.path}: OK: {s['units']} units, {s['mailboxes']} mailboxes "
          f"(by kind: {kinds or 'none'}; by state: {states or 'none'})")
    return EXIT_OK


# --------------------------------------------------------------------------- address

_BIRTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")


def _add_address(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("address", help="propose the address for a new person",
                       description="Print the address the naming policy gives a new person, "
                       "free of clashes with every address, alias and unit mailbox in the "
                       "data file.")
    p.add_argument("name", help='full name, surname first, with diacritics ("Nguyễn Văn Long")')
    p.add_argument("--unit", help="unit id the person joins (for templates using {unit})")
    p.add_argument("--birth", metavar="YYYY-MM", help="year and month of birth")
    p.add_argument("--id-digits", metavar="D", help="trailing digits of the citizen ID")
    p.add_argument("--data", default=DEFAULT_DATA, help=f"the data file (default {DEFAULT_DATA})")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_address)


def cmd_address(args: argparse.Namespace) -> int:
    if args.birth is not None and not _BIRTH.fullmatch(args.birth):
        raise CliError(f"--birth {args.birth!r} must be YYYY-MM, e.g. 1990-02")
    if args.id_digits is not None and not re.fullmatch(r"[0-9]{1,6}", args.id_digits):
        raise CliError(f"--id-digits {args.id_digits!r} must be 1 to 6 digits "
                       "(never the full citizen ID)")
    if not args.name.strip():
        raise CliError("the name is empty")
    result = validate(args.data)
    if not result.ok or result.directory is None:
        _report_problems(result, args.format)
        print("mailgov: error: fix the data file before proposing addresses", file=sys.stderr)
        return EXIT_PROBLEMS
    d = result.directory
    naming = NamingPolicy.from_dict(d.policy.naming)  # valid: validate() parsed it already
    locals_by_unit = unit_locals(d.units, naming)
    unit_local = None
    if args.unit is not None:
        if args.unit not in locals_by_unit:
            near = difflib.get_close_matches(args.unit, list(locals_by_unit), n=3)
            hint = f"; did you mean {', '.join(near)}?" if near else ""
            raise CliError(f"unknown unit {args.unit!r} in {args.data}{hint}")
        unit_local = locals_by_unit[args.unit]
    person = Person(args.name, unit_local, args.birth, args.id_digits)
    try:
        local = naming.propose(person, taken_locals(d, naming))
        candidates = naming.candidates(person)
    except NamingError as exc:
        raise CliError(f"cannot propose an address: {exc}") from None
    address = d.address(local)
    if args.format == "json":
        _print_json({"address": address, "local": local, "name": args.name,
                     "unit": args.unit, "candidates": candidates})
    else:
        print(address)
    return EXIT_OK


# --------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mailgov",
        description="The ministry's e-mail system as code: validate the data file, "
        "propose addresses (plan, apply, report and dns come next).")
    parser.add_argument("--version", action="version", version=f"mailgov {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_validate(sub)
    _add_address(sub)
    dns_command.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 with a usage message on bad options
    try:
        code: int = args.func(args)
    except CliError as exc:
        print(f"mailgov: error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `mailgov validate | head`
        return EXIT_OK
    return code


if __name__ == "__main__":
    sys.exit(main())
