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
(address → sha256): a ``purge`` is planned only for an address found there.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from mailgov.model import Directory, Mailbox, Policy

MANIFEST_VERSION = 1
ARCHIVE_SUFFIX = ".tar.gz"  # gzip: in every Debian base system; restorable with plain tar
_SHA256 = re.compile(r"[0-9a-f]{64}")
_ADDRESS = re.compile(r"[a-z0-9_][a-z0-9._-]*@[a-z0-9.-]+")


class ManifestError(ValueError):
    """The manifest is not what this module writes (one-line reason)."""


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
    """The mailbox home on the mail host (``mailHomeDirectory``, docs/directory.md)."""
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
    """Every cancelled mailbox whose retention has ended, in file order.

    Whether it is archived or purged next depends on the host's manifest; one that is gone
    from both the directory and the disk has been purged already and is left alone.
    """
    org = directory.organization
    out = []
    for m in directory.mailboxes:
        end = retention_end(m, directory.policy)
        if end is not None and today >= end:
            out.append(DueStore(directory.address(m.address),
                                f"uid={m.address},ou=people,{org.base_dn}",
                                store_path(org.domain, m.address), m.unit, end.isoformat()))
    return out


def renamed_stores(directory: Directory) -> list[dict[str, str]]:
    """Mailboxes renamed in the data (``renamed_from``): the store moves from the old home to
    the new one (the reconcile renames the entry; its ``mailHomeDirectory`` follows)."""
    org = directory.organization
    return [{"address": directory.address(m.address),
             "store": store_path(org.domain, m.address),
             "old_store": store_path(org.domain, m.renamed_from)}
            for m in directory.mailboxes
            if m.renamed_from and m.renamed_from.lower() != m.address.lower()]


# --------------------------------------------------------------------------- naming


def archive_name(address: str, day: date) -> str:
    """``<address>-<YYYYMMDD>.tar.gz``: one file per mailbox and day, sorted by address."""
    if not _ADDRESS.fullmatch(address.lower()):
        raise ValueError(f"not a mail address: {address!r}")
    return f"{address.lower()}-{day.strftime('%Y%m%d')}{ARCHIVE_SUFFIX}"


# --------------------------------------------------------------------------- manifest


def empty_manifest() -> dict[str, Any]:
    return {"version": MANIFEST_VERSION, "archives": {}}


def parse_manifest(text: str) -> dict[str, Any]:
    """Read and check a manifest; raises :class:`ManifestError` on anything unexpected."""
    if not text.strip():
        return empty_manifest()
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ManifestError(f"manifest is not JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("version") != MANIFEST_VERSION:
        raise ManifestError(f"manifest version must be {MANIFEST_VERSION}")
    archives = data.get("archives")
    if not isinstance(archives, dict):
        raise ManifestError("manifest has no 'archives' mapping")
    for address, entry in archives.items():
        problems = entry_problems(entry)
        if problems:
            raise ManifestError(f"manifest entry {address}: {'; '.join(problems)}")
    return data


def load_manifest(path: str | Path) -> dict[str, Any]:
    """The manifest at ``path``; an absent file is an empty manifest."""
    p = Path(path)
    if not p.exists():
        return empty_manifest()
    return parse_manifest(p.read_text(encoding="utf-8"))


def entry_problems(entry: Any) -> list[str]:
    if not isinstance(entry, dict):
        return ["not a mapping"]
    out = []
    if not isinstance(entry.get("archive"), str) or not entry["archive"].endswith(ARCHIVE_SUFFIX) \
            or "/" in entry["archive"]:
        out.append(f"archive must be a file name ending in {ARCHIVE_SUFFIX}")
    if not isinstance(entry.get("sha256"), str) or not _SHA256.fullmatch(entry["sha256"]):
        out.append("sha256 must be 64 lower-case hex digits")
    if not isinstance(entry.get("size"), int) or entry["size"] < 0:
        out.append("size must be a non-negative integer")
    if not isinstance(entry.get("store"), str) or not entry["store"].startswith("/"):
        out.append("store must be an absolute path")
    return out


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
    """address → sha256: what ``mailgov.plan.plan(archived=...)`` wants."""
    return {a: e["sha256"] for a, e in manifest.get("archives", {}).items()}


# --------------------------------------------------------------------------- checks


def sha256_stream(fh: BinaryIO, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    for block in iter(lambda: fh.read(chunk), b""):
        h.update(block)
    return h.hexdigest()


def verify(entry: Mapping[str, Any], sha256: str, size: int) -> list[str]:
    """Why an archive file does not match its manifest record (empty: it does)."""
    out = []
    if sha256 != entry.get("sha256"):
        out.append(f"sha256 {sha256[:12]}… differs from the manifest's "
                   f"{str(entry.get('sha256'))[:12]}…")
    if size != entry.get("size"):
        out.append(f"size {size} differs from the manifest's {entry.get('size')}")
    return out


def purge_allowed(manifest: Mapping[str, Any], address: str, sha256: str | None,
                  size: int | None) -> tuple[bool, str]:
    """May ``address``'s store and entry be deleted? Only with a recorded archive whose file
    (hashed just now: ``sha256``/``size``; None = file missing) still matches the record."""
    entry = manifest.get("archives", {}).get(address)
    if entry is None:
        return False, f"{address}: no archive recorded in the manifest"
    if sha256 is None or size is None:
        return False, f"{address}: archive file {entry['archive']} is missing"
    problems = verify(entry, sha256, size)
    if problems:
        return False, f"{address}: " + "; ".join(problems)
    return True, f"{address}: archive {entry['archive']} verified"


def split_actions(due: Iterable[DueStore], manifest: Mapping[str, Any],
                  present: Iterable[str]) -> tuple[list[DueStore], list[DueStore]]:
    """(to archive, to purge) among ``due`` given the addresses still ``present`` on the host
    (entry or store). Purge needs a recorded archive; archiving needs something to archive."""
    here = set(present)
    recorded = manifest.get("archives", {})
    to_archive = [d for d in due if d.address in here and d.address not in recorded]
    to_purge = [d for d in due if d.address in here and d.address in recorded]
    return to_archive, to_purge


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    """``python -m mailgov.archive due --data D [--today YYYY-MM-DD]``: due stores as JSON."""
    import argparse
    import sys

    from mailgov.validate import validate

    ap = argparse.ArgumentParser(prog="python -m mailgov.archive")
    sub = ap.add_subparsers(dest="cmd", required=True)
    due = sub.add_parser("due", help="cancelled mailboxes past retention (JSON)")
    due.add_argument("--data", required=True)
    due.add_argument("--today")
    arch = sub.add_parser("archived", help="address -> sha256 from a manifest (JSON)")
    arch.add_argument("manifest")
    args = ap.parse_args(argv)
    try:
        if args.cmd == "archived":
            print(json.dumps(archived_map(load_manifest(args.manifest)), sort_keys=True))
            return 0
        result = validate(args.data)
        if not result.ok or result.directory is None:
            print(f"mailgov archive: {args.data} does not validate; run mailgov validate",
                  file=sys.stderr)
            return 2
        today = date.fromisoformat(args.today) if args.today else date.today()
    except (ManifestError, OSError, ValueError) as exc:
        print(f"mailgov archive: {exc}", file=sys.stderr)
        return 2
    d = result.directory
    # The mass-change rail (policy.safety.max_disable_share) also bounds purges per run.
    limit = max(1, int(d.policy.max_disable_share * len(d.mailboxes)))
    print(json.dumps({"due": [x.as_dict() for x in due_stores(d, today)], "max_purge": limit,
                      "renames": renamed_stores(d), "today": today.isoformat()}))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
