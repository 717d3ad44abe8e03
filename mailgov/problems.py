"""Problems found in the data file, and the catalogue of rule ids.

Every check in the loader and the validator reports a :class:`Problem` carrying one of the
rule ids below. The ids are stable: docs/rules.md documents each one with an example fix, CI
logs and review comments refer to them, so never renumber; retire an id instead of reusing it.

Numbering: MG0xx reading the file, MG1xx shape (schema), MG2xx units and addresses,
MG3xx lifecycle, MG4xx policy, quotas and forwarding, MG5xx the repository around the
data (CODEOWNERS); MG6xx the refusals of a plan
(``PLAN_RULES``: the data against the live directory).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

#: rule id -> one-line summary (the long form with fixes is docs/rules.md).
RULES: dict[str, str] = {
    # --- reading the file (mailgov.loader) ---
    "MG001": "the data file cannot be read (missing, a directory, no permission)",
    "MG002": "the data file is empty",
    "MG003": "the data file starts with a byte order mark (BOM)",
    "MG004": "the data file is not valid UTF-8",
    "MG005": "a tab character is used for indentation",
    "MG006": "the file is not well-formed YAML",
    "MG007": "a mapping has the same key twice",
    "MG008": "the top level of the file is not a mapping",
    "MG009": "the file holds a control character or a Unicode non-character",
    "MG010": "the file nests too deep, or an alias is inside the node it names",
    "MG011": ("the file is too big to read safely: aliases expand too much, a number too "
              "long, a mapping of too many keys"),
    "MG012": "an included per-unit file does not exist or cannot be read",
    "MG013": "an include leaves the data directory (absolute path, .., a symbolic link out)",
    "MG014": "includes form a cycle (a file includes itself, directly or through others)",
    "MG015": "an include item is not `include: PATH` alone, or the included file is not a "
             "mapping with a `mailboxes` list",
    # --- shape (schema/mailboxes.schema.json) ---
    "MG101": "a required field is missing",
    "MG102": "a field is not known at this place (typo or misplaced key)",
    "MG103": "a value has the wrong type",
    "MG104": "a value is not one of the allowed choices",
    "MG105": "a value does not have the required form (local part, date, request reference…)",
    "MG106": "a number is out of its allowed range",
    "MG107": "a list or text is empty, too long or has repeated items",
    "MG108": "a text holds a control character or non-character (also written as an escape)",
    "MG109": "a mapping key is not text (a number, true/false or an empty key)",
    # --- units and addresses ---
    "MG201": "an address is used twice (addresses, aliases, unit mailboxes, unit lists; any case)",
    "MG202": "an alias is a full address at another domain",
    "MG203": "a mailbox refers to a unit that does not exist",
    "MG204": "a unit's parent does not exist",
    "MG205": "the unit tree has a cycle",
    "MG206": "two units have the same id",
    "MG207": "an affiliate's sponsor unit does not exist",
    "MG208": "an affiliate mailbox has no sponsor",
    "MG209": "organization.it_unit is not a unit",
    "MG210": "an address does not follow the naming policy and has no naming_exemption",
    "MG211": "a unit mailbox address made from the unit templates is not a valid local part",
    "MG212": "the naming policy itself is invalid (bad template or clash settings)",
    "MG213": "a unit head is not a mailbox",
    "MG214": "a unit head is not an active personal mailbox",
    "MG215": "a unit head does not belong to that unit",
    "MG216": "a unit mailbox delegate is not a mailbox",
    "MG217": "a unit mailbox delegate is not an active personal mailbox",
    "MG218": "a protected local part is not any address, alias or unit mailbox",
    "MG219": "a renamed mailbox's old address is another current address or alias",
    "MG220": "two mailboxes have the same id (an id is one person's, never reused)",
    "MG221": "a reserved address (once used) is given to someone new",
    "MG222": "an alias domain is the primary domain or listed twice",
    "MG223": "an alias domain's end date is before today",
    "MG224": "a dissolved unit's successor is unknown, itself or dissolved",
    "MG225": "dissolved units name each other as successors (a cycle)",
    "MG226": "a mailbox or sub-unit is still in a dissolved unit",
    "MG227": ("a suspension ends before or when it starts (or a cancellation's `until` is "
              "on or before its date)"),
    "MG228": "a dated move names its own unit, or a unit that is gone while the move is to come",
    "MG229": "a domain switch: two pending at once, or the old domain's alias period ends first",
    # --- lifecycle ---
    "MG301": "a suspended mailbox has no `suspended` block",
    "MG302": "a cancelled mailbox has no `cancelled` block",
    "MG303": "a mailbox carries a lifecycle block its state does not allow",
    "MG304": "a date that cannot be scheduled is in the future",
    "MG305": "a lifecycle date is before the mailbox was created",
    "MG306": "a date has the right form but is not a real calendar date",
    # --- policy, quotas, forwarding ---
    "MG401": "a mailbox quota is outside the policy range for its kind",
    "MG402": "a unit mailbox quota is outside the policy range for unit mailboxes",
    "MG403": "forwarding to a domain the policy does not allow",
    "MG404": "a mailbox forwards to itself",
    "MG405": "policy quotas are not ordered min <= default <= max",
    "MG406": "a policy.safety share is not between 0 and 1",
    "MG407": "policy.password.administrators.lockout_duration_minutes is 0 (never ends)",
    "MG408": "a mailbox forwards to an address of the organisation that nobody holds",
    # --- the repository around the data (mailgov/codeowners.py; `mailgov validate` only) ---
    "MG501": "the data names approvers but the repository has no CODEOWNERS file",
    "MG502": "the CODEOWNERS file is stale (not what `mailgov codeowners` writes now)",
    "MG503": "a unit names approvers but its records are not in a file of their own",
    "MG504": "units name approvers but policy.approvers (the IT department) is missing",
}

#: Rules about the repository rather than the file (the CODEOWNERS beside it): checked by the
#: `mailgov validate` command, covered by tests/unit/test_codeowners.py, not by a corpus file.
REPO_RULES = frozenset({"MG501", "MG502", "MG503", "MG504"})

#: Refusals of a plan (mailgov/plan.py, mailgov/reconcile.py): nothing of it is applied. They
#: judge the data against the live directory, so they are found when planning, not by
#: `mailgov validate`; docs/rules.md documents them beside the others.
PLAN_RULES: dict[str, str] = {
    "MG601": "mass change: the plan disables or removes more than the guards allow",
    "MG602": "a protected account would be disabled or removed",
    "MG603": "a mailbox record left the data while its entry is still in the directory",
    "MG604": "an address is held in the directory by another mailbox (another id)",
    "MG605": "an address would move from one mailbox to another",
    "MG606": "two entries would share an address or a mail store",
    "MG607": "the guards (policy.safety, policy.protected) change with other changes",
    "MG608": "the planning date is ahead of the clock by more than allowed",
    "MG609": "mass change: the plan changes the addresses of more entries than the caps allow",
    "MG610": "mass change: the plan modifies more entries than the caps allow",
    "MG611": "a purged mailbox's record left the data without its addresses in `reserved`",
    "MG612": "a cancelled mailbox would be restored under another name or address",
    "MG613": "a forward targets a domain that becomes an alias domain in the same change",
    "MG614": ("an address that delivers in the base of the review would stop: dropped from "
              "its record's history, from `reserved` or with its unit, or its period or "
              "domain cut short"),
}

#: What may not reach a `PATH:LINE:COL:` line as it is: line breaks (LF, CR, NEL, U+2028,
#: U+2029) would start a line of the output that looks like another problem or like none,
#: the other control characters would act on the terminal or the CI log. A key or value that
#: holds them (written as an escape, MG108) is shown with them as escapes, as in its message's
#: ``!r`` parts: ``dc=x\nobjectClass: top``.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escape(match: re.Match[str]) -> str:
    return match.group().encode("unicode_escape").decode("ascii")


#: severity is always "error" today; the field exists so warnings can come later
#: without changing the output format.
ERROR = "error"


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding. ``line``/``col`` are 1-based; 0 means "unknown" (e.g. file not found)."""

    rule: str
    message: str
    path: tuple[str | int, ...] = ()
    line: int = 0
    col: int = 0
    file: str = ""
    severity: str = field(default=ERROR)

    def __post_init__(self) -> None:
        # Catch typos in rule ids at the place they are made, not in a review of the docs.
        if self.rule not in RULES:
            raise ValueError(f"unknown rule id {self.rule!r}")

    def format(self) -> str:
        """`PATH:LINE:COL: RULE-ID message` — the form editors and CI annotate: one line, a
        control character in the message shown as its escape (``\\n``, ``\\x1b``)."""
        message = _UNPRINTABLE.sub(_escape, self.message)
        return f"{self.file}:{self.line}:{self.col}: {self.rule} {message}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "rule": self.rule,
            "severity": self.severity,
            "message": self.message,
            "path": list(self.path),
        }

    def sort_key(self) -> tuple[int, int, str, str]:
        return (self.line, self.col, self.rule, self.message)


def json_path(path: tuple[str | int, ...]) -> str:
    """("mailboxes", 3, "aliases", 0) -> "mailboxes[3].aliases[0]" for messages."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"
