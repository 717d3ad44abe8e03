"""Archive and purge of cancelled mailboxes' stores: naming, manifest, checks (pure).

The regulation keeps a cancelled mailbox's data for a retention period
(``policy.retention``: ``staff_days``, ``heads_days`` for ``role: head``, counted from
``cancelled.date``), then archives it and only then deletes it. The mail host does the work
(``playbooks/lifecycle.yml`` with ``library/mailgov_mail_store.py``); this module says
*what* is due, how archives are named and what the manifest holds, and checks a manifest —
no I/O beyond reading a file that is handed in.

The manifest (JSON, on the mail host beside the archives and fetched to the controller)::

    {"version": 1,
     "archives": {"<address>": {"archive": "<file name>", "sha256": "<hex>", "size": <bytes>,
                                "store": "<home dir archived>", "files": <n>,
                                "created": "<YYYY-MM-DDTHH:MM:SSZ>",
                                "newest": <mtime of the newest message archived>}}}

A record is replaced only by a new archive of the same address, made because mail arrived in
the store after the recorded one (``newest``); a purge refuses a store with newer mail.

``archived_map(manifest)`` turns it into the planner's ``archived`` argument
(store → sha256): a ``purge`` is planned only for an entry whose own home directory was
archived. Keyed by the store, not the address: an address can pass from one mailbox to
another over the years, and an archive of the first must never let the second be purged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from mailgov.archive_format import (
    ARCHIVE_SUFFIX,
    MANIFEST_VERSION,
    ManifestError,
    archive_name,
    empty_manifest,
    entry_problems,
    parse_manifest,
    sha256_stream,
    verify,
)
from mailgov.directory import store_of
from mailgov.i18n import _
from mailgov.model import Directory, Mailbox, Policy

__all__ = ["ARCHIVE_SUFFIX", "MANIFEST_VERSION", "ManifestError", "archive_name",
           "empty_manifest", "entry_problems", "parse_manifest", "sha256_stream", "verify"]

# --------------------------------------------------------------------------- what is due


def retention_days(mailbox: Mailbox, policy: Policy) -> int:
    return policy.retention_heads_days if mailbox.role == "head" else policy.retention_staff_days


def retention_end(mailbox: Mailbox, policy: Policy) -> date | None:
    """First day the cancelled mailbox may be archived (None: not cancelled).

    The one retention rule: the planner (archive, purge) and the mail host's list of due
    stores both ask here.
    """
    if mailbox.state != "cancelled" or mailbox.cancelled is None:
        return None
    cancelled = mailbox.cancelled.date
    day = cancelled if isinstance(cancelled, date) else date.fromisoformat(str(cancelled))
    return day + timedelta(days=retention_days(mailbox, policy))


def is_due(mailbox: Mailbox, policy: Policy, today: date) -> bool:
    """Cancelled and past its retention: the store must be archived, then purged."""
    end = retention_end(mailbox, policy)
    return end is not None and today >= end


def store_path(domain: str, local: str, root: str = "/var/vmail") -> str:
    """The home of an entry made before ids (by address); new ones: directory.store_of."""
    return f"{root}/{domain}/{local}"


@dataclass(frozen=True)
class DueStore:
    """A cancelled mailbox past retention, as the mail host needs it."""

    address: str  # full address
    dn: str
    store: str
    unit: str
    retention_end: str  # YYYY-MM-DD

    def as_dict(self) -> dict[str, str]:
        return {"address": self.address, "dn": self.dn, "store": self.store,
                "unit": self.unit, "retention_end": self.retention_end}


def due_stores(directory: Directory, today: date) -> list[DueStore]:
    """Every cancelled mailbox whose retention by the data has ended, in file order: a
    directory that lacks their entry never gets one (the planner treats them as purged).

    What is archived and purged is decided by the planner from the retention recorded in the
    directory (docs/reconcile.md, "Invariants"), never from this list.
    """
    org = directory.organization
    out = []
    for m in directory.mailboxes:
        end = retention_end(m, directory.policy)
        if end is not None and today >= end:
            out.append(DueStore(directory.address(m.address),
                                f"uid={m.address},ou=people,{org.base_dn}",
                                store_for(directory, m), m.unit, end.isoformat()))
    return out


def load_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest at ``path``; an absent file is an empty manifest."""
    p = Path(path)
    if not p.exists():
        return empty_manifest()
    return parse_manifest(p.read_text(encoding="utf-8"))


def add_entry(manifest: Mapping[str, Any], address: str, entry: Mapping[str, Any]
              ) -> dict[str, Any]:
    """A new manifest with ``address`` recorded (an existing record is never replaced:
    the first verified archive is the one a purge relied on)."""
    problems = entry_problems(dict(entry))
    if problems:
        raise ManifestError(f"{address}: {'; '.join(problems)}")
    archives = dict(manifest.get("archives", {}))
    if address in archives:
        return {"version": MANIFEST_VERSION, "archives": archives}
    archives[address] = dict(entry)
    return {"version": MANIFEST_VERSION, "archives": dict(sorted(archives.items()))}


def archived_map(manifest: Mapping[str, Any]) -> dict[str, str]:
    """store (the home directory archived) → sha256: what ``mailgov.plan.plan(archived=...)``
    wants."""
    return {e["store"]: e["sha256"] for e in manifest.get("archives", {}).values()}


def store_for(directory: Directory, m: Mailbox) -> str:
    """The home directory of ``m``'s entry: by id, or by address for one made before ids."""
    return store_path(directory.organization.domain, m.address) if m.id is None \
        else store_of(m.id)


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    """``python -m mailgov.archive archived MANIFEST``: store -> sha256 as JSON."""
    import argparse
    import sys

    ap = argparse.ArgumentParser(prog="python -m mailgov.archive")
    sub = ap.add_subparsers(dest="cmd", required=True)
    arch = sub.add_parser("archived", help="store -> sha256 from a manifest (JSON)")
    arch.add_argument("manifest")
    args = ap.parse_args(argv)
    try:
        print(json.dumps(archived_map(load_manifest(args.manifest)), sort_keys=True))
    except (ManifestError, OSError, ValueError) as exc:
        print(_("mailgov archive: {error}").format(error=exc), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
