"""The facts the roles need, computed once from the validated data file.

Roles never read the data file (docs/inventory.md): the inventory maps these facts onto each
role's documented variables (``inventory/*/group_vars/all/mailgov.yml``). The facts reach
Ansible through the vars plugin ``vars_plugins/mailgov_data.py`` (one validation per run, before
any play starts) and are printed by ``mailgov export-vars`` for a site that prefers a
generated vars file, or to see what the plugin gives.

Only what a server needs is exported: the organization, the policy numbers the services
enforce, and the unit mailboxes' delegates (Dovecot's ACLs). Mailbox records stay with the
reconcile, which reads the file itself.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from datetime import date
from pathlib import Path
from typing import Any

from mailgov.directory import desired_entries
from mailgov.i18n import error_line, ngettext
from mailgov.model import Directory, PasswordRules
from mailgov.validate import validate

# Bumped when a fact changes meaning or shape; the inventory mapping may check it.
FACTS_VERSION = 1


class DataProblems(Exception):
    """The data file does not validate: ``problems`` are the formatted lines."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        n = len(problems)
        shown = "\n".join(problems[:20])
        more = f"\n... and {n - 20} more" if n > 20 else ""
        super().__init__(f"{path}: {n} problem{'s' if n != 1 else ''} in the data; nothing "
                         f"was run (mailgov validate {path} lists them all):\n{shown}{more}")


def _rules(r: PasswordRules) -> dict[str, Any]:
    out = asdict(r)
    out["required_classes"] = list(r.required_classes)
    return out


def delegated_units(d: Directory) -> list[dict[str, Any]]:
    """[{address, delegates}] of every unit mailbox with delegates, from the desired entries
    (the same -delegates groups the reconcile writes)."""
    entries = desired_entries(d)
    mail_of = {e.dn.lower(): e.attributes["mail"][0] for e in entries if "mail" in e.attributes}
    unit_mail = {e.unit: e.attributes["mail"][0] for e in entries if e.kind == "unit"}
    out = []
    for e in entries:
        if e.kind != "delegates" or e.unit is None:
            continue
        members = [mail_of[m.lower()] for m in e.attributes.get("member", ())
                   if m.lower() in mail_of]
        out.append({"address": unit_mail[e.unit], "delegates": members})
    return out


def facts(d: Directory, data_file: str) -> dict[str, Any]:
    """The role facts of a validated directory (JSON-safe: str, int, bool, list, dict)."""
    org, pol = d.organization, d.policy
    return {
        "version": FACTS_VERSION,
        "data_file": data_file,
        "organization": {
            "name": org.name,
            "name_en": org.name_en or "",
            "domain": org.domain,
            # issue 14: further domains every address receives at (validate refuses an ended
            # one, MG223, so the listed ones are live)
            "alias_domains": [a.domain.lower() for a in org.alias_domains],
            "base_dn": org.base_dn,
        },
        "policy": {
            "message_size_mb": pol.message_size_mb,
            "blocked_attachments": list(pol.blocked_attachments),
            "password": {
                "users": _rules(pol.password_users),
                "administrators": _rules(pol.password_administrators),
            },
            "inactivity_lock_days": pol.inactivity_lock_days,
            "outbound_rate_limit": {
                "messages": pol.rate_limit_messages,
                "window_minutes": pol.rate_limit_window_minutes,
                "action": pol.rate_limit_action,
            },
            "forwarding_allowed_domains": list(pol.forwarding_allowed_domains),
            "logs_retention_days": pol.logs_retention_days,
            "backup_schedule": pol.backup_schedule,
            "admin_ssh": asdict(pol.admin_ssh),
        },
        "delegated_units": delegated_units(d),
    }


def load_facts(path: str | Path, *, today: date | None = None) -> dict[str, Any]:
    """Validate ``path`` and return its facts; raises :class:`DataProblems` otherwise."""
    name = str(path)
    result = validate(path, today=today)
    if not result.ok or result.directory is None:
        raise DataProblems(name, [p.format() for p in result.problems])
    # A dated domain switch (alias_domains[].primary_until) is not in force before its day:
    # the roles get the domains of ``today``, as the planner writes the directory for it.
    from mailgov.dated import as_of

    directory, _notes = as_of(result.directory, today or date.today())
    return facts(directory, str(Path(path).resolve()))


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "export-vars", help="print the facts the roles need (what the inventory maps)",
        description="Validate the data file and print the facts the roles take as inputs "
        "(organization, policy numbers, unit mailbox delegates), as the vars plugin "
        "vars_plugins/mailgov_data.py gives them to Ansible under `mailgov_facts`.")
    p.add_argument("path", nargs="?", default="data/mailboxes.yaml",
                   help="the data file (default data/mailboxes.yaml)")
    p.add_argument("--format", choices=("yaml", "json"), default="yaml",
                   help="yaml: a group_vars file defining mailgov_facts; json: the facts alone")
    p.set_defaults(func=cmd_export_vars)


def cmd_export_vars(args: argparse.Namespace) -> int:
    try:
        found = load_facts(args.path)
    except DataProblems as exc:
        for line in exc.problems:
            print(line)
        print(error_line(ngettext("{count} problem in {path}; nothing exported",
                                  "{count} problems in {path}; nothing "
                                  "exported", len(exc.problems)).format(
            count=len(exc.problems), path=exc.path)),
              file=sys.stderr)
        return 1
    if args.format == "json":
        print(json.dumps(found, ensure_ascii=False, indent=2))
        return 0
    import yaml

    print("# Generated by `mailgov export-vars`: the role facts of the data file. Do not edit.")
    print(yaml.safe_dump({"mailgov_facts": found}, allow_unicode=True, sort_keys=False), end="")
    return 0
