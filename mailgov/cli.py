"""The `mailgov` command.

Exit codes: 0 success, 1 the data has problems, 2 usage error (bad option, unknown unit,
unusable input, directory unreachable). `mailgov plan` and `mailgov apply` add 3 (a safety
rail refused the plan) and 4 (changes pending; 0 = nothing to apply); `mailgov apply` adds 5
(another apply holds the lock) and 6 (apply incomplete: re-run), see docs/reconcile.md. User
errors print one clear message, never a traceback.

Adding a command (plan, apply, report, dns …): write ``_add_<name>(sub)`` that creates the
sub-parser and sets ``func`` to a function ``(args) -> int``, and call it in
:func:`build_parser`. Raise :class:`CliError` for anything the user has to fix.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from mailgov import __version__, codeowners, comment, edit_cli, i18n, layout, role_vars, usage_cli
from mailgov import args as arg_types
from mailgov import dns as dns_command
from mailgov.i18n import _, ngettext
from mailgov.naming import NamingError, Person
from mailgov.validate import MAX_PROBLEMS, Result, gc_paused, taken_locals, validate

DEFAULT_DATA = "data/mailboxes.yaml"

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3  # plan: a safety rail tripped
EXIT_CHANGES = 4  # plan: changes pending (0 = the directory matches the data)
# apply: 5 lock held, 6 apply incomplete (mailgov.reconcile.EXIT_CODES has them all)


class CliError(Exception):
    """A user error: printed as `mailgov: error: <message>`, exit code ``code``."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2))


def _report_problems(result: Result, fmt: str) -> None:
    if fmt == "json":
        more = {"not_shown": result.not_shown} if result.not_shown else {}
        _print_json({"path": result.path, "ok": False,
                     "problems": [p.as_dict() for p in result.problems], **more})
        return
    for p in result.problems:
        print(p.format())
    n = len(result.problems)
    print(ngettext("{n} problem in {path}", "{n} problems in {path}", n).format(
        n=n, path=result.path), file=sys.stderr)
    if result.not_shown:
        print(_("and at least {n:,} more not shown: fix those above and run again "
                "(`mailgov validate --max-problems 0` shows every one)").format(
                n=result.not_shown), file=sys.stderr)


# --------------------------------------------------------------------------- validate


def _add_validate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("validate", help="check the data file (shape and meaning)",
                       description="Check the data file. Exit 0 and a summary when it is "
                       "valid, exit 1 and every problem (PATH:LINE:COL: RULE-ID message) "
                       "when not. Rule ids: docs/rules.md.")
    p.add_argument("path", nargs="?", default=DEFAULT_DATA,
                   help=f"the data file (default {DEFAULT_DATA})")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.add_argument("--today", type=arg_types.day, default=None, metavar="YYYY-MM-DD",
                   help="check dates against this day instead of today")
    p.add_argument("--max-problems", type=arg_types.count, default=MAX_PROBLEMS, metavar="N",
                   help=f"show at most N problems, count the rest (default {MAX_PROBLEMS:,}; "
                   "0 shows every one)")
    _repo_root_arg(p)
    p.set_defaults(func=cmd_validate)


def _repo_root_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--repo-root", type=Path, default=None, metavar="DIR",
                   help="the repository whose CODEOWNERS is checked (default: the nearest "
                   "directory above the data file holding .git)")


def cmd_validate(args: argparse.Namespace) -> int:
    result = validate(args.path, today=args.today, max_problems=args.max_problems)
    if result.ok:  # the repository checks need valid data (docs/rules.md, MG5xx)
        result.problems = codeowners.check(result, args.repo_root)
    if not result.ok:
        _report_problems(result, args.format)
        return EXIT_PROBLEMS
    s = result.summary()
    if args.format == "json":
        _print_json({"path": result.path, "ok": True, "problems": [], "summary": s})
        return EXIT_OK
    kinds = ", ".join(f"{_(k)} {v}" for k, v in s["by_kind"].items())
    states = ", ".join(f"{_(k)} {v}" for k, v in s["by_state"].items())
    print(_("{path}: OK: {units} units, {mailboxes} mailboxes (by kind: {kinds}; by state: "
            "{states})").format(path=result.path, units=s["units"], mailboxes=s["mailboxes"],
                                kinds=kinds or _("none"), states=states or _("none")))
    return EXIT_OK


# --------------------------------------------------------------------------- owners


def _add_owners(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("codeowners", help="write CODEOWNERS from the approvers in the data",
                       description="Write the CODEOWNERS file that makes the git hosting "
                       "platform ask each unit's approvers to review its own file and the IT "
                       "department (policy.approvers) everything else. `mailgov validate` "
                       "fails (MG502) when it is stale. docs/data-format.md.")
    p.add_argument("path", nargs="?", default=DEFAULT_DATA,
                   help=f"the data file (default {DEFAULT_DATA})")
    p.add_argument("--out", type=Path, default=None, metavar="FILE",
                   help="where to write (default: the CODEOWNERS the repository has, else "
                   "CODEOWNERS at its root, read by GitHub and GitLab alike)")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 when the file is missing or stale")
    _repo_root_arg(p)
    p.set_defaults(func=cmd_codeowners)
    for name, what in (("split", "move each unit's records into data/units/<unit>.yaml, "
                        "included from the data file"),
                       ("join", "put the per-unit files back into the data file")):
        q = sub.add_parser(name, help=what, description=f"{what[0].upper()}{what[1:]}. "
                           "Lossless: comments and order are kept, and `split` then `join` "
                           "gives back the same bytes; the result is checked before "
                           "anything is written. docs/data-format.md, \"Per-unit files\".")
        q.add_argument("path", nargs="?", default=DEFAULT_DATA,
                       help=f"the data file (default {DEFAULT_DATA})")
        q.set_defaults(func=cmd_layout, action=name)


def _add_history(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "history", help="a mailbox's life: from git and from the provider's access log",
        description="Show a mailbox's life: each commit that created, changed or removed its "
        "record (found by id, so renames are followed), and each write the provider's access "
        "log holds for its entry, with who and when; writes not made by the reconciler "
        "applying a commit are marked OUTSIDE GIT. docs/reconcile.md, \"Audit\".")
    p.add_argument("address", help="local part or full address (current, alias or former)")
    p.add_argument("--data", default=DEFAULT_DATA, help=f"the data file (default {DEFAULT_DATA})")
    _add_live_args(p)
    p.add_argument("--no-git", action="store_true", help="only the access log")
    p.add_argument("--max-commits", type=int, default=500, metavar="N",
                   help="look at the last N commits touching the data (default 500)")
    p.add_argument("--format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_history)


def cmd_history(args: argparse.Namespace) -> int:
    from mailgov import audit
    from mailgov import live as live_mod

    result = validate(args.data)
    if not result.ok or result.directory is None:
        _report_problems(result, "text")
        return EXIT_PROBLEMS
    d = result.directory
    local = args.address.split("@", 1)[0].lower()
    if "@" in args.address and args.address.split("@", 1)[1].lower() != d.organization.domain:
        raise CliError(_("{address}: not at {domain}").format(
            address=args.address, domain=d.organization.domain))
    box = next((m for m in d.mailboxes if local in (m.address, *m.aliases, m.renamed_from)),
               None)
    ident = box.id if box is not None else None
    events: list[Any] = []
    git_note = ""
    if not args.no_git:
        try:
            events = audit.git_history(args.data, local, ident, args.max_commits)
        except audit.AuditError as exc:
            git_note = _("git history not read: {error}").format(error=exc)
    if box is None and not events:
        raise CliError(_("{address}: no such mailbox in {data} (nor in its git history)").format(
            address=args.address, data=args.data))
    base_dn = d.organization.base_dn
    writes: list[Any] = []
    log_note = ""
    if args.ldap_uri:
        reconciler = f"cn=mailgov,ou=services,{base_dn}"
        bind_dn = args.bind_dn or (None if args.ldap_uri.startswith("ldapi:")
                                   else f"cn=planner,ou=services,{base_dn}")
        dns = audit.history_dns(events, box.address if box else local, f"ou=people,{base_dn}")
        try:
            conn = live_mod.connect(args.ldap_uri, bind_dn, _password(args), args.ca_file,
                                    args.timeout)
            try:
                writes = [w for w in audit.writes_to(conn, dns) if not w.bookkeeping]
                audit.attribute(writes, audit.lock_writes(conn, base_dn), reconciler)
            finally:
                conn.unbind()
        except (audit.AuditError, live_mod.LiveError) as exc:
            raise CliError(str(exc)) from None
    else:
        log_note = _("access log not read: give --ldap-uri (with --password-file, --ca-file)")
    shown = f"{box.address if box else local}@{d.organization.domain}"
    if args.format == "json":
        _print_json({"address": shown, "id": ident, "git": [e.to_dict() for e in events],
                     "accesslog": [w.to_dict() for w in writes],
                     "notes": [n for n in (git_note, log_note) if n]})
        return EXIT_OK
    print(_("{shown} (id {id})").format(shown=shown, id=ident if ident is not None else '?'))
    print(_("From git ({data}):").format(data=args.data))
    for e in events:
        print(f"  {e.when[:19].replace('T', ' ')}  {e.commit[:12]}  {e.author}: {e.what}"
              f"  [{e.subject}]")
    if git_note or not events:
        print("  " + (git_note or _("(no commit changed this record)")))
    print(_("From the provider's access log ({suffix}):").format(suffix=audit.SUFFIX))
    for w in writes:
        print(_("  {when:%Y-%m-%d %H:%M:%S} UTC  {op} {dn}: {changes}  by {author}").format(
            when=w.when, op=w.op, dn=w.dn, changes=w.changes(), author=w.author()))
    if log_note or not writes:
        print("  " + (log_note or _("(no write logged for this entry)")))
    return EXIT_OK


def cmd_codeowners(args: argparse.Namespace) -> int:
    result = validate(args.path)
    if not result.ok:
        _report_problems(result, "text")
        return EXIT_PROBLEMS
    if args.check:
        result.problems = codeowners.check(result, args.repo_root)
        if result.problems:
            _report_problems(result, "text")
            return EXIT_PROBLEMS
        return EXIT_OK
    if not codeowners.declared(result.directory):  # type: ignore[arg-type]
        raise CliError(_("the data names no approvers (policy.approvers, units[].approvers); "
                         "nothing to write"))
    target = codeowners.write(result, args.out, args.repo_root)
    print(_("wrote {target}").format(target=target))
    return EXIT_OK


def cmd_layout(args: argparse.Namespace) -> int:
    from mailgov.loader import LoadError

    try:
        if args.action == "split":
            files = layout.split(args.path)
            print(ngettext("wrote {main} and {count} per-unit file ({folder})",
                           "wrote {main} and {count} per-unit files "
                           "({folder})", len(files) - 1).format(
                main=files[0], count=len(files) - 1,
                folder=Path(files[1]).parent if len(files) > 1 else '-'))
        else:
            files = layout.join(args.path)
            print(ngettext("wrote {path}; removed {count} per-unit file",
                           "wrote {path}; removed {count} per-unit files", len(files)).format(
                path=args.path, count=len(files)))
    except LoadError as exc:
        for p in exc.problems:
            print(p.format())
        print(ngettext("{count} problem in {path}",
                       "{count} problems in {path}", len(exc.problems)).format(
            count=len(exc.problems), path=args.path), file=sys.stderr)
        return EXIT_PROBLEMS
    except (layout.LayoutError, OSError) as exc:
        raise CliError(str(exc)) from None
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
        raise CliError(_("--birth {birth!r} must be YYYY-MM, e.g. 1990-02").format(
            birth=args.birth))
    if args.id_digits is not None and not re.fullmatch(r"[0-9]{1,6}", args.id_digits):
        raise CliError(_("--id-digits {id_digits!r} must be 1 to 6 digits (never the full "
                         "citizen ID)").format(id_digits=args.id_digits))
    if not args.name.strip():
        raise CliError(_("the name is empty"))
    # One load and one check; the naming policy and the unit mailboxes come from that check.
    result = validate(args.data)
    if not result.ok or result.directory is None or result.naming is None:
        _report_problems(result, args.format)
        print(i18n.error_line(_("fix the data file before proposing addresses")), file=sys.stderr)
        return EXIT_PROBLEMS
    d = result.directory
    naming = result.naming
    locals_by_unit = result.unit_locals
    unit_local = None
    if args.unit is not None:
        if args.unit not in locals_by_unit:
            near = difflib.get_close_matches(args.unit, list(locals_by_unit), n=3)
            hint = _("; did you mean {names}?").format(names=', '.join(near)) if near else ""
            raise CliError(_("unknown unit {unit!r} in {data}{hint}").format(
                unit=args.unit, data=args.data, hint=hint))
        unit_local = locals_by_unit[args.unit]
    person = Person(args.name, unit_local, args.birth, args.id_digits)
    try:
        local = naming.propose(person, taken_locals(d, naming, locals_by_unit))
        candidates = naming.candidates(person)
    except NamingError as exc:
        raise CliError(_("cannot propose an address: {error}").format(error=exc)) from None
    address = d.address(local)
    if args.format == "json":
        _print_json({"address": address, "local": local, "name": args.name,
                     "unit": args.unit, "candidates": candidates})
    else:
        print(address)
    return EXIT_OK


# --------------------------------------------------------------------------- plan


def _add_live_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("live directory (or --live-json for a saved state)")
    g.add_argument("--ldap-uri", metavar="URI",
                   help="ldap:// (StartTLS), ldaps:// or ldapi:// of the provider")
    g.add_argument("--bind-dn", metavar="DN",
                   help="bind DN (default: the reconciler, cn=mailgov,ou=services,BASE)")
    g.add_argument("--password-file", metavar="FILE", help="file holding the bind password")
    g.add_argument("--ca-file", metavar="FILE", help="CA certificate that signed the server's")
    g.add_argument("--timeout", type=float, default=10, metavar="S",
                   help="seconds to wait for the server (default 10)")


def _add_plan(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "plan", help="show what a reconcile would change in the directory",
        description="Validate the data, read the live directory (one paged search) and print "
        "every change a reconcile would make, grouped by unit and kind. Nothing is written. "
        "Exit 0 nothing to apply, 4 changes pending, 3 refused by a safety rail, 1 problems "
        "in the data, 2 usage or connection error (docs/reconcile.md).")
    p.add_argument("path", nargs="?", default=DEFAULT_DATA,
                   help=f"the data file (default {DEFAULT_DATA})")
    _add_live_args(p)
    p.add_argument("--live-json", metavar="FILE",
                   help="plan against a saved live state (mailgov dump-live) instead")
    p.add_argument("--out", metavar="PLAN.json",
                   help="also record the plan for review: data file (sha256, commit), base, "
                   "settings, live state digest, changes and their checksum; `mailgov apply "
                   "PLAN.json` applies exactly it or nothing")
    p.add_argument("--no-audit", action="store_true",
                   help="do not read the provider's access log for the authors of drift")
    p.add_argument("--comment-parts", metavar="DIR",
                   help="also write the Markdown as DIR/plan-1.md, plan-2.md … each short "
                   "enough for one pull-request comment (summary first)")
    _add_planning_args(p)
    p.set_defaults(func=cmd_plan)


def _add_planning_args(p: argparse.ArgumentParser) -> None:
    """What a plan depends on besides the data and the live state (plan and apply)."""
    p.add_argument("--archived", metavar="MANIFEST",
                   help="archive manifest (JSON): mailboxes listed there may be purged")
    p.add_argument("--format", choices=("markdown", "json"), default="markdown")
    p.add_argument("--allow-mass-change", nargs="?", const=True, default=False,
                   metavar="REASON",
                   help="override the mass-change caps, naming the decision that makes it "
                   "right (shown in the plan); without REASON only MG601 (disables) is passed")
    p.add_argument("--remove-drift", action="store_true",
                   help="delete entries the data does not explain (default: report them)")
    p.add_argument("--today", type=arg_types.day, default=None, metavar="YYYY-MM-DD",
                   help="plan as of this day (retention, date checks); at most "
                   "--today-max-ahead days ahead of the clock (MG608)")
    p.add_argument("--today-max-ahead", type=int, default=0, metavar="DAYS",
                   help="how far --today may be ahead of the clock (default 0)")
    p.add_argument("--base", metavar="FILE",
                   help="the data file at the base of the review (main's): the safety "
                   "guards are read from it, and a change to them must come alone (MG607)")


def _add_dump_live(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "dump-live", help="save the live directory as JSON (for offline plans)",
        description="Read the live directory (the attributes the planner compares) and save "
        "it as JSON, for `mailgov plan --live-json FILE` (offline review, tests).")
    p.add_argument("path", nargs="?", default=DEFAULT_DATA,
                   help=f"the data file, for the base DN (default {DEFAULT_DATA})")
    _add_live_args(p)
    p.add_argument("--base-dn", metavar="DN", help="read this subtree (default: from the data)")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="where to write")
    p.set_defaults(func=cmd_dump_live)


def _password(args: argparse.Namespace) -> str | None:
    """The bind password from --password-file (never from the command line: `ps` shows it)."""
    if not args.password_file:
        return None
    try:
        with open(args.password_file, encoding="utf-8") as fh:
            return fh.read().rstrip("\r\n")
    except OSError as exc:
        raise CliError(_("cannot read --password-file {password_file}: {error}").format(
            password_file=args.password_file, error=exc.strerror or exc)) from None


def _read_live(args: argparse.Namespace, base_dn: str) -> Any:
    # Imported here: `mailgov validate` must not need ldap3 to start.
    from mailgov import live as live_mod

    try:
        if getattr(args, "live_json", None):
            return live_mod.load_json(args.live_json)
        if not args.ldap_uri:
            raise CliError(_("give --ldap-uri URI (with --password-file and --ca-file), or "
                             "--live-json FILE"))
        password = _password(args)
        bind_dn = args.bind_dn or (None if args.ldap_uri.startswith("ldapi:")
                                   else f"cn=mailgov,ou=services,{base_dn}")
        conn = live_mod.connect(args.ldap_uri, bind_dn, password, args.ca_file, args.timeout)
        try:
            return live_mod.read_live(conn, base_dn)
        finally:
            conn.unbind()
    except live_mod.LiveError as exc:
        raise CliError(str(exc)) from None


def _archived(path: str | None) -> dict[str, str]:
    if not path:
        return {}
    from mailgov.archive import ManifestError, archived_map, load_manifest

    try:
        there = Path(path).exists()
    except OSError as exc:  # a name too long for the file system (Python 3.11 raises)
        raise CliError(_("archive manifest {path}: {error}").format(
            path=path, error=exc.strerror or exc)) from None
    if not there:
        # load_manifest reads an absent file as empty (the archive run starts one); a path
        # the admin names that is not there is a typo, not "nothing archived"
        raise CliError(_("archive manifest {path}: no such file (an absent manifest is not "
                         "an empty one: give the manifest the purge relied on)").format(
            path=path))
    try:
        return archived_map(load_manifest(path))
    except (ManifestError, OSError, ValueError) as exc:
        raise CliError(_("archive manifest {path}: {error}").format(path=path, error=exc)) from None


def cmd_plan(args: argparse.Namespace) -> int:
    # The live state and the plan are hundreds of thousands of objects without cycles: the
    # cyclic collector would only re-scan them (validate.gc_paused says how much that costs).
    with gc_paused():
        return _plan(args)


def _plan(args: argparse.Namespace) -> int:
    from mailgov.reconcile import ContextError, PlanContext
    from mailgov.report_plan import MAX_LINES, render_json, render_markdown

    result = validate(args.path, today=args.today)
    if not result.ok or result.directory is None:
        # Bad data never reaches the planner.
        _report_problems(result, "json" if args.format == "json" else "text")
        print(_("mailgov: error: the data has problems; no plan was made"), file=sys.stderr)
        return EXIT_PROBLEMS
    d = result.directory
    try:
        context = PlanContext.make(result, today=args.today, base_path=args.base,
                                   max_ahead_days=args.today_max_ahead)
    except ContextError as exc:
        raise CliError(str(exc), EXIT_PROBLEMS) from None
    live = _read_live(args, d.organization.base_dn)
    the_plan = context.plan(d, live, archived=_archived(args.archived),
                            allow_mass_change=args.allow_mass_change,
                            remove_drift=args.remove_drift)
    markdown = render_markdown(the_plan, unit_names={u.id: u.name for u in d.units},
                               max_lines=1_000_000 if args.comment_parts else MAX_LINES)
    outside = _outside_git(args, the_plan, d.organization.base_dn)
    if outside:
        from mailgov.audit import drift_section

        markdown += drift_section(the_plan, outside)
    if args.format == "json" and outside:
        doc = json.loads(render_json(the_plan))
        doc["outside_git"] = [w.to_dict() for w in outside.values()]
        print(json.dumps(doc, ensure_ascii=False, indent=2))
    elif args.format == "json":
        print(render_json(the_plan))
    else:
        print(markdown, end="")
    if args.comment_parts:
        _write_comment_parts(Path(args.comment_parts), markdown)
    if args.out:
        _write_reviewed(args, the_plan, live)
    if not the_plan.ok:
        return EXIT_REFUSED
    return EXIT_CHANGES if the_plan.changes else EXIT_OK


def _outside_git(args: argparse.Namespace, the_plan: Any, base_dn: str) -> dict[str, Any]:
    """The provider's access log on the entries the plan changes: the last write to each, if
    it was made outside git (docs/reconcile.md, "Audit"). Best effort: a directory without the
    log, or an account that may not read it, gives a note on stderr and no authors."""
    if getattr(args, "live_json", None) or not args.ldap_uri or args.no_audit:
        return {}
    from mailgov import audit
    from mailgov import live as live_mod

    dns = {dn for c in [*the_plan.changes, *the_plan.drift] if c.kind != "create"
           for dn in (c.dn, c.old_dn) if dn}
    if not dns:
        return {}
    reconciler = f"cn=mailgov,ou=services,{base_dn}"
    bind_dn = args.bind_dn or (None if args.ldap_uri.startswith("ldapi:") else reconciler)
    try:
        conn = live_mod.connect(args.ldap_uri, bind_dn, _password(args), args.ca_file,
                                args.timeout)
        try:
            return audit.last_outside(conn, dns, base_dn, reconciler)
        finally:
            conn.unbind()
    except (audit.AuditError, live_mod.LiveError) as exc:
        print(_("mailgov: note: authors of drift not shown: {error}").format(
            error=exc), file=sys.stderr)
        return {}


def _write_comment_parts(folder: Path, markdown: str) -> None:
    from mailgov.reviewed import split_markdown

    try:
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("plan-*.md"):
            old.unlink()
        parts = split_markdown(markdown)
        for i, part in enumerate(parts, 1):
            (folder / f"plan-{i}.md").write_text(part, encoding="utf-8")
    except OSError as exc:
        raise CliError(_("cannot write the comment parts in {folder}: {error}").format(
            folder=folder, error=exc)) from None
    print(ngettext("mailgov: {count} comment part in {folder}",
                   "mailgov: {count} comment parts in {folder}", len(parts)).format(
        count=len(parts), folder=folder), file=sys.stderr)


def _write_reviewed(args: argparse.Namespace, the_plan: Any, live: Any) -> None:
    from mailgov import reviewed

    settings = {"today": args.today.isoformat() if args.today else None,
                "allow_mass_change": args.allow_mass_change, "remove_drift": args.remove_drift,
                "scope": "all", "kinds": [], "today_max_ahead_days": args.today_max_ahead}
    doc = reviewed.record(data_path=args.path, base_path=args.base, changes=the_plan.changes,
                          settings=settings, live=live, archived=_archived(args.archived),
                          plan_dict=the_plan.to_dict())
    try:
        Path(args.out).write_text(json.dumps(doc, ensure_ascii=False, indent=1) + "\n",
                                  encoding="utf-8")
    except OSError as exc:
        raise CliError(_("cannot write {out}: {error}").format(
            out=args.out, error=exc.strerror or exc)) from None
    print(_("mailgov: plan recorded in {out} (checksum {checksum}…)").format(
        out=args.out, checksum=doc['checksum'][:12]),
          file=sys.stderr)


def cmd_dump_live(args: argparse.Namespace) -> int:
    from mailgov.live import LiveError, save_json

    base_dn = args.base_dn
    if not base_dn:
        result = validate(args.path)
        if not result.ok or result.directory is None:
            _report_problems(result, "text")
            raise CliError(_("the data has problems; give --base-dn to read anyway"),
                           EXIT_PROBLEMS)
        base_dn = result.directory.organization.base_dn
    live = _read_live(args, base_dn)
    try:
        save_json(live, args.output, base_dn)
    except (OSError, LiveError) as exc:
        raise CliError(_("cannot write {output}: {error}").format(
            output=args.output, error=exc)) from None
    print(ngettext("{output}: {count} entry under {base_dn}",
                   "{output}: {count} entries under {base_dn}", len(live)).format(
        output=args.output, count=len(live), base_dn=base_dn), file=sys.stderr)
    return EXIT_OK


# --------------------------------------------------------------------------- apply


def _add_apply(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "apply", help="make the directory match the data (dry run unless --confirm)",
        description="Validate the data, read the live directory, plan, and with --confirm take "
        "the reconcile lock, plan again under it and write exactly that plan. Without "
        "--confirm nothing is written: the plan is printed (a dry run). Exit 0 nothing to "
        "apply or applied, 4 dry run with changes pending, 3 refused by a safety rail, 1 "
        "problems in the data, 2 usage or connection error, 5 another apply holds the lock, "
        "6 apply incomplete (re-run to finish); docs/reconcile.md.")
    p.add_argument("path", nargs="?", default=DEFAULT_DATA,
                   help=f"the data file (default {DEFAULT_DATA}), or a plan recorded by "
                   "`mailgov plan --out PLAN.json`: then its data file, base and settings, and "
                   "nothing is written unless the plan made under the lock is that plan "
                   "(exit 7 otherwise)")
    _add_live_args(p)
    p.add_argument("--confirm", action="store_true",
                   help="write the changes (default: print the plan, write nothing)")
    p.add_argument("--scope", choices=("mailboxes", "units", "all"), default="all",
                   help="mailboxes = ou=people only, units = the rest, all (default)")
    p.add_argument("--lock-wait", type=float, default=0, metavar="S",
                   help="seconds to wait while another apply holds the lock (default 0)")
    p.add_argument("--request-ref", metavar="REF",
                   default=os.environ.get("MAILGOV_REQUEST_REF") or None,
                   help="the request this apply carries out (merge request URL, pipeline, "
                   "decision number; default $MAILGOV_REQUEST_REF): recorded with the data "
                   "commit in the provider's access log (docs/reconcile.md, \"Audit\")")
    _add_planning_args(p)
    p.set_defaults(func=cmd_apply)


def cmd_apply(args: argparse.Namespace) -> int:
    # Imported here: `mailgov validate` must not need ldap3 to start.
    from mailgov import reconcile as rec
    from mailgov.report_plan import render_markdown

    if not args.ldap_uri:
        raise CliError(_("give --ldap-uri URI (with --password-file and --ca-file)"))
    settings = rec.Settings(
        data=args.path, uri=args.ldap_uri, password=_password(args), bind_dn=args.bind_dn,
        ca_file=args.ca_file, timeout=args.timeout, today=args.today,
        archived=_archived(args.archived), allow_mass_change=args.allow_mass_change,
        remove_drift=args.remove_drift, scope=args.scope, lock_wait=args.lock_wait,
        base=args.base, today_max_ahead_days=args.today_max_ahead,
        request_ref=args.request_ref)
    from mailgov.reviewed import is_plan_file

    if is_plan_file(args.path):
        settings = _reviewed_settings(args, settings)
    out = rec.reconcile(settings, confirm=args.confirm)
    if args.format == "json":
        _print_json(out.report())
    elif out.status == rec.PROBLEMS:
        for problem in out.problems:
            print(problem)
    elif out.plan is not None:
        title = "mailgov apply" if args.confirm else "mailgov apply (dry run)"
        print(render_markdown(out.scoped_plan(), title=title, unit_names=out.unit_names),
              end="")
    if out.status in (rec.NOTHING, rec.APPLIED, rec.PENDING):
        hint = _(" Re-run with --confirm to apply.") if out.status == rec.PENDING else ""
        print(_("mailgov: {message}.{hint}").format(
            message=out.message, hint=hint), file=sys.stderr)
    else:
        print(i18n.error_line(out.message), file=sys.stderr)
    return out.exit_code


def _override(value: object) -> bool | str:
    """A recorded override: its reason (str), True (legacy: no reason) or False."""
    return value.strip() or False if isinstance(value, str) else bool(value)


def _reviewed_settings(args: argparse.Namespace, base: Any) -> Any:
    """The Settings of a reviewed plan: its data file, base and planning settings. Flags that
    would plan differently are refused: the reviewed plan's are the ones that were reviewed."""
    import dataclasses

    from mailgov import reviewed

    given = [flag for flag, on in (("--today", args.today), ("--base", args.base),
                                   ("--archived", args.archived),
                                   ("--allow-mass-change", args.allow_mass_change),
                                   ("--remove-drift", args.remove_drift)) if on]
    if given:
        raise CliError(_("{given}: a reviewed plan carries its own settings; plan again with "
                         "them and have that plan reviewed").format(given=', '.join(given)))
    try:
        r = reviewed.load(args.path)
        today = date.fromisoformat(r.settings["today"]) if r.settings.get("today") else None
    except (reviewed.ReviewedPlanError, ValueError) as exc:
        raise CliError(str(exc)) from None
    return dataclasses.replace(
        base, data=r.data_path, base=r.base_path, today=today, archived=dict(r.archived),
        allow_mass_change=_override(r.settings.get("allow_mass_change")),
        remove_drift=bool(r.settings.get("remove_drift")),
        today_max_ahead_days=int(r.settings.get("today_max_ahead_days") or 0), reviewed=r)


# --------------------------------------------------------------------------- main


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mailgov",
        description="The ministry's e-mail system as code: validate the data file, propose "
        "addresses, plan the directory's changes (Markdown for a review, or JSON) and apply "
        "them, print the DNS records the domain needs and the facts the roles need.")
    parser.add_argument("--version", action="version", version=f"mailgov {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_validate(sub)
    _add_address(sub)
    _add_plan(sub)
    _add_dump_live(sub)
    _add_apply(sub)
    _add_owners(sub)
    _add_history(sub)
    dns_command.add_parser(sub)
    role_vars.add_parser(sub)
    comment.add_parser(sub)
    usage_cli.add_parsers(sub)
    _add_edits(sub)
    from mailgov import dump, ldif_import  # issue 15 item 3: their own modules

    dump.add_parser(sub)
    ldif_import.add_parser(sub)
    edit_cli.add_parsers(sub)  # add, cancel, … import, export (issue 15)
    return parser


# --------------------------------------------------------------------------- edits


def _add_edits(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("domain", help="change the organisation's domains (an edit of the data)")
    dsub = p.add_subparsers(dest="domain_command", metavar="ACTION", required=True)
    m = dsub.add_parser(
        "migrate", help="make NEW the primary domain, OLD an alias domain",
        description="Edit the data file: organization.domain OLD -> NEW, and OLD kept as an "
        "alias domain (until --keep-until, or for ever): every mailbox, unit mailbox and list "
        "receives at both. One reviewable edit: the rest of the file is untouched, and the "
        "result must validate or nothing is written. The plan of the change trips MG609 by "
        "design: apply it with --allow-mass-change naming the decision.")
    m.add_argument("old")
    m.add_argument("new")
    m.add_argument("--keep-until", type=arg_types.day, metavar="YYYY-MM-DD",
                   help="the first day the old domain no longer receives")
    m.add_argument("--effective", type=arg_types.day, metavar="YYYY-MM-DD",
                   help="the day the switch takes effect (default: at the next apply); until "
                   "then OLD stays the primary and the plan lists the switch under scheduled")
    m.add_argument("--request", help="the decision (cited in the plan), e.g. 35/2025/NĐ-CP")
    m.add_argument("--data", default=DEFAULT_DATA, help=f"the data file ({DEFAULT_DATA})")
    m.add_argument("--dry-run", action="store_true", help="print the diff, write nothing")
    m.set_defaults(func=cmd_domain_migrate)

    r = sub.add_parser(
        "reserve-purged", help="record purged mailboxes: their addresses go to `reserved`",
        description="Edit the data file after the purge was applied: the records of purged "
        "mailboxes (cancelled, past the retention on --today, archived in MANIFEST) leave the "
        "data, and every address each ever used (address, renamed_from, aliases) is appended "
        "to `reserved` with its id: `mailgov address` never proposes it again and validate "
        "refuses it for anyone else (MG221). Comments and every other line stay; the result "
        "must validate or nothing is written. Run before the purge, the next plan refuses "
        "(MG603: the record left the data while its entry is still in the directory).")
    r.add_argument("--archived", required=True, metavar="MANIFEST",
                   help="the archive manifest the purge relied on")
    r.add_argument("--today", type=arg_types.day, default=None, metavar="YYYY-MM-DD",
                   help="the day whose retention counts (default: today)")
    r.add_argument("--data", default=DEFAULT_DATA, help=f"the data file ({DEFAULT_DATA})")
    r.add_argument("--dry-run", action="store_true", help="print the diff, write nothing")
    r.set_defaults(func=cmd_reserve_purged)

    p = sub.add_parser("unit", help="rename or merge units (an edit of the data)")
    usub = p.add_subparsers(dest="unit_command", metavar="ACTION", required=True)
    r = usub.add_parser(
        "rename", help="give a unit a new abbreviation (unit mailbox and list address)",
        description="Edit the data file: units[ID].abbr becomes NEW and the old one is "
        "appended to formerly, so the old unit address and list keep delivering to the unit "
        "for policy.history.unit_alias_days. The result must validate or nothing is written.")
    r.add_argument("id")
    r.add_argument("--abbr", required=True)
    r.add_argument("--request", help="the decision (cited in the plan)")
    r.add_argument("--date", type=arg_types.day, metavar="YYYY-MM-DD", help="default: today")
    r.add_argument("--data", default=DEFAULT_DATA, help=f"the data file ({DEFAULT_DATA})")
    r.add_argument("--dry-run", action="store_true", help="print the diff, write nothing")
    r.set_defaults(func=cmd_unit_rename)
    g = usub.add_parser(
        "merge", help="dissolve SRC into DST: its people and sub-units move to DST",
        description="Edit the data file: every mailbox of SRC (and its sub-units, sponsored "
        "affiliates, units dissolved into it) moves to DST, and SRC records dissolved {date, "
        "successor: DST, request}: it keeps its entry and mail store, its unit address and "
        "list deliver to DST's for policy.history.unit_alias_days. The plan shows moves, not "
        "drift. The result must validate or nothing is written.")
    g.add_argument("src")
    g.add_argument("dst")
    g.add_argument("--request", required=True, help="the decision (cited in the plan)")
    g.add_argument("--date", type=arg_types.day, metavar="YYYY-MM-DD", help="default: today")
    g.add_argument("--data", default=DEFAULT_DATA, help=f"the data file ({DEFAULT_DATA})")
    g.add_argument("--dry-run", action="store_true", help="print the diff, write nothing")
    g.set_defaults(func=cmd_unit_merge)


def _edited(args: argparse.Namespace, run: Any, what: str) -> int:
    """Report like the edit commands (edit_cli.run_edit): a dry run prints the same unified
    diff, the summary goes to stderr."""
    from mailgov import edit_cli
    from mailgov.mailbox_edit import Done

    return edit_cli.guarded(lambda a: edit_cli.run_edit(a, lambda: Done(run(), what)))(args)


def cmd_unit_rename(args: argparse.Namespace) -> int:
    from mailgov import edit

    return _edited(args, lambda: edit.unit_rename(
        args.data, args.id, args.abbr, request=args.request, on=args.date,
        dry_run=args.dry_run), _("unit {unit} abbr -> {abbr}").format(unit=args.id,
                                                                       abbr=args.abbr))


def cmd_unit_merge(args: argparse.Namespace) -> int:
    from mailgov import edit

    return _edited(args, lambda: edit.unit_merge(
        args.data, args.src, args.dst, request=args.request, on=args.date,
        dry_run=args.dry_run), _("unit {src} merged into {dst}").format(src=args.src,
                                                                         dst=args.dst))


def cmd_domain_migrate(args: argparse.Namespace) -> int:
    from mailgov import edit

    what = (_("{old} -> {new}, {old} receives until {until}") if args.keep_until
            else _("{old} -> {new}")).format(old=args.old, new=args.new, until=args.keep_until)
    if args.effective:
        what += " " + _("(from {day})").format(day=args.effective)
    return _edited(args, lambda: edit.domain_migrate(
        args.data, args.old, args.new, args.keep_until, request=args.request,
        effective=args.effective, dry_run=args.dry_run), what)


# Words validate's summary shows (kinds and states), translated where shown.
_SUMMARY_WORDS = (i18n.N_("personal"), i18n.N_("affiliate"), i18n.N_("active"),
                  i18n.N_("suspended"), i18n.N_("cancelled"))


def cmd_reserve_purged(args: argparse.Namespace) -> int:
    from mailgov import edit, edit_cli
    from mailgov.mailbox_edit import Done

    archived = _archived(args.archived)

    def make() -> Done:
        e, done = edit.reserve_purged(args.data, archived, today=args.today or date.today(),
                                      dry_run=args.dry_run)
        return Done(e, "; ".join(_("{address} (id {id}) removed; reserved: {reserved}").format(
            address=p.address, id=p.id, reserved=", ".join(p.reserved)) for p in done))

    return edit_cli.guarded(lambda a: edit_cli.run_edit(a, make))(args)


def _is_text(arg: str) -> bool:
    """Whether ``arg`` is text: Python hands an argument's bytes that are not UTF-8 over as
    lone surrogates (surrogateescape), which no file, YAML writer or directory takes."""
    try:
        arg.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown_bytes(arg: str, limit: int = 80) -> str:
    """``arg`` quoted, each byte that is not UTF-8 as \\xNN (cut at ``limit`` characters)."""
    out = "".join(f"\\x{ord(c) - 0xDC00:02x}" if 0xDC80 <= ord(c) <= 0xDCFF
                  else f"\\u{ord(c):04x}" if 0xD800 <= ord(c) <= 0xDFFF else c
                  for c in arg[:limit])
    return repr(out + ("…" if len(arg) > limit else "")).replace("\\\\", "\\")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    i18n.use(i18n.cli_language(argv))
    bad = next((a for a in argv if not _is_text(a)), None)
    if bad is not None:
        print(i18n.error_line(_("argument {value}: not UTF-8 text (a byte the terminal or "
                                "script did not encode as UTF-8); give it as UTF-8").format(
            value=_shown_bytes(bad))), file=sys.stderr)
        return EXIT_USAGE
    parser = i18n.localise(build_parser())
    args = parser.parse_args(argv)  # exits 2 with a usage message on bad options
    try:
        code: int = args.func(args)
    except CliError as exc:
        print(i18n.error_line(exc), file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `mailgov validate | head`
        return EXIT_OK
    return code


if __name__ == "__main__":
    # `python -m mailgov.cli` runs this file as __main__, a second copy of the module: the
    # other modules raise mailgov.cli.CliError, which only mailgov.cli's own main() catches.
    from mailgov.cli import main as _main

    sys.exit(_main())
