#!/usr/bin/python
"""Ansible module: archive, purge or restore cancelled mailboxes' stores on the mail host."""

from __future__ import annotations

DOCUMENTATION = r"""
module: mailgov_mail_store
short_description: Archive (tar.gz + sha256 manifest), purge or restore mail stores
description:
  - The mail-host half of the regulation's "keep, then archive, then delete" for cancelled
    mailboxes (docs/reconcile.md, "Lifecycle"). Runs as root on the host that holds the stores.
  - C(state=archived) writes C(<archive_dir>/<address>-<YYYYMMDD>.tar.gz) of each mailbox's
    store (numeric owners kept), re-reads it, and records its sha256, size, file count and the
    newest message's mtime in C(<archive_dir>/manifest.json). An address already recorded is
    left alone unless mail arrived in its store after that archive (then it is archived again).
    A mailbox with neither a store nor a directory entry was purged already and is left.
  - C(state=verified) is read-only - it returns C(verified), store -> sha256, for the
    addresses recorded in the manifest whose archive file hashes to the recorded sha256 now
    and whose store holds no mail newer than the archive (all recorded addresses when
    C(mailboxes) is empty). A mailbox named whose address holds the archive of another store
    is left with that reason, never verified. That map is what the planner's C(archived)
    takes - the directory entry is deleted by the reconcile (C(mailgov_mailboxes) with
    C(kinds=[archive, purge])), under its lock and its rails, never by this module.
  - C(state=purged) deletes the stores of the purges the reconcile just applied (its
    C(stores) result, the home read from the live entry), ONLY when the entry is gone
    (checked read-only over C(ldapi:///) with SASL EXTERNAL), the archive recorded is of that
    very store, verifies, and holds every message the store holds (Maildir names, flags
    aside). If any store fails those checks, nothing at all is deleted.
  - C(state=restored) unpacks the recorded, verified archive of one address into C(dest)
    (default the original store), refusing a non-empty destination unless C(force).
  - A rename never moves a store (the entry keeps its home), so there is no state for it.
  - Check mode reports what would change without writing.
options:
  state:
    description: What to do.
    type: str
    choices: [archived, verified, purged, restored]
    required: true
  mailboxes:
    description: >-
      Items with C(address), C(store) and C(dn): the C(stores) the reconcile returned
      (C(mailgov_mailboxes)); C(restored) needs only C(address); C(verified) needs no
      C(dn) (it reads no directory) and may be empty.
    type: list
    elements: dict
    default: []
  archive_dir:
    description: Where the archives and manifest.json live.
    type: path
    default: /var/backups/mailgov/archives
  dest:
    description: With C(restored), the directory to restore into (default the original store).
    type: path
  force:
    description: With C(restored), replace a non-empty destination.
    type: bool
    default: false
  ldap_uri:
    description: LDAP URI for the entry checks (read-only, SASL EXTERNAL as root).
    type: str
    default: "ldapi:///"
author:
  - mailgov contributors (@mailgov)
requirements:
  - python3-ldap (Debian's package; roles/mailgov_base installs it) for the directory entry
    checks; without it C(purged) deletes nothing
attributes:
  check_mode:
    support: full
    details: Reports what would be archived, verified, purged or restored without writing.
  diff_mode:
    support: none
  platform:
    platforms: posix
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
"""

EXAMPLES = r"""
- name: Archive the stores the applied plan says are due
  mailgov_mail_store:
    state: archived
    mailboxes: "{{ reconciled.stores | selectattr('kind', 'equalto', 'archive') }}"
"""

RETURN = r"""
archived: {description: Addresses archived (or that would be)., type: list, returned: always}
verified:
  description:
    - "Store (home directory archived) -> sha256 of its verified archive (state=verified)."
    - The planner purges an entry only when its own store is there, never on another
      mailbox's archive of the same address.
  type: dict
  returned: always
purged: {description: Addresses whose store was deleted., type: list, returned: always}
restored: {description: Addresses restored., type: list, returned: always}
left: {description: "Address -> why nothing was done.", type: dict, returned: always}
manifest: {description: The manifest after the run., type: dict, returned: always}
"""

# Ansible modules keep DOCUMENTATION first, so the imports come after it.
import datetime  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import tarfile  # noqa: E402
import tempfile  # noqa: E402

from ansible.module_utils.mailgov_archive_format import (  # noqa: E402
    archive_name,
    read_manifest,
    sha256_file,
    verify_file,
    write_manifest,
)


class StoreError(Exception):
    """A one-line reason the module refuses to go on."""


def newest_message(store: str) -> float:
    """The newest mtime of a message file (Maildir cur/ and new/) in the store, 0 if none.

    Index and cache files are left out: reading a mailbox rewrites them, mail does not."""
    newest = 0.0
    for root, _dirs, files in os.walk(store):
        if os.path.basename(root) in ("cur", "new"):
            for f in files:
                try:
                    newest = max(newest, os.lstat(os.path.join(root, f)).st_mtime)
                except FileNotFoundError:  # moved by Dovecot meanwhile
                    continue
    return newest


def make_archive(store: str, archive_dir: str, address: str, now: datetime.datetime) -> dict:
    """tar.gz the store (members relative to its parent, numeric owners), re-read it, hash it.
    Returns the manifest entry. A missing store gives an empty archive (files 0)."""
    os.makedirs(archive_dir, mode=0o700, exist_ok=True)
    newest = newest_message(store)  # before reading: mail arriving meanwhile counts as newer
    name = archive_name(address, now.date())
    final = os.path.join(archive_dir, name)
    fd, tmp = tempfile.mkstemp(dir=archive_dir, prefix=".archive-", suffix=".tar.gz")
    os.close(fd)
    try:
        with tarfile.open(tmp, "w:gz", format=tarfile.PAX_FORMAT) as tar:
            if os.path.isdir(store):
                tar.add(store, arcname=os.path.basename(store.rstrip("/")), recursive=True)
        # Re-read the whole archive before anything relies on it.
        with tarfile.open(tmp, "r:gz") as tar:
            files = sum(1 for m in tar.getmembers() if m.isfile())
        os.chmod(tmp, 0o600)
        os.replace(tmp, final)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    sha, size = sha256_file(final)
    return {"archive": name, "sha256": sha, "size": size, "store": store, "files": files,
            "created": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "newest": newest}


def changed_since(entry: dict, store: str) -> bool:
    """Has mail arrived in the store since its archive was made (a mailbox recreated and
    cancelled again, or an admin putting mail back)? Then the archive is stale."""
    return os.path.isdir(store) and newest_message(store) > float(entry.get("newest", 0.0))


def other_stores_archive(entry: dict | None, store: str) -> str | None:
    """The one rule for an address whose record is another store's archive (the address passed
    on from a mailbox archived before): that archive is never this store's - not archived over
    (state=archived), not verified for it, never purged on it. None: no record, or this
    store's; else the reason, which each state completes with what it did not do."""
    if entry is None or entry.get("store") == store:
        return None
    return f"the archive recorded for this address is of {entry.get('store')}, not of {store}"


def verified(archive_dir: str, entry: dict) -> str | None:
    """None when the archive file matches its record, else why not."""
    problems = verify_file(archive_dir, entry)
    return "; ".join(problems) if problems else None


def restore(archive_dir: str, entry: dict, dest: str, force: bool) -> int:
    """Unpack into dest (via a scratch dir beside it, then rename). Returns files restored."""
    why = verified(archive_dir, entry)
    if why:
        raise StoreError(why)
    if os.path.isdir(dest) and os.listdir(dest) and not force:
        raise StoreError(f"{dest} exists and is not empty (force=true replaces it)")
    parent = os.path.dirname(dest.rstrip("/")) or "/"
    os.makedirs(parent, exist_ok=True)
    scratch = tempfile.mkdtemp(dir=parent, prefix=".restore-")
    try:
        with tarfile.open(os.path.join(archive_dir, entry["archive"]), "r:gz") as tar:
            members = tar.getmembers()
            root = os.path.basename(entry["store"].rstrip("/"))
            for m in members:
                if m.name != root and not m.name.startswith(root + "/"):
                    raise StoreError(f"unexpected member {m.name!r} in {entry['archive']}")
            if hasattr(tarfile, "tar_filter"):
                tar.extractall(scratch, filter="tar")  # keeps owners, refuses escapes
            else:  # pragma: no cover - old Python: members were checked above
                tar.extractall(scratch)
        src = os.path.join(scratch, root)
        if not os.path.isdir(src):
            os.makedirs(src)
        if os.path.exists(dest):
            shutil.rmtree(dest)
        os.replace(src, dest)
        return sum(1 for m in members if m.isfile())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _message_keys(names: list[str]) -> set[str]:
    """Maildir message names without their flags (``1700000000.M1P2.host:2,S`` -> ``…host``):
    reading mail after the archive renames files, it does not make new ones."""
    out = set()
    for name in names:
        parts = name.replace("\\", "/").split("/")
        if len(parts) >= 2 and parts[-2] in ("cur", "new"):
            out.add(parts[-1].split(":", 1)[0])
    return out


def missing_from_archive(archive_dir: str, entry: dict, store: str) -> list[str]:
    """Messages in ``store`` that its archive does not hold (empty: the archive holds all)."""
    here = []
    for root, _dirs, files in os.walk(store):
        here += [os.path.join(root, f) for f in files]
    with tarfile.open(os.path.join(archive_dir, entry["archive"]), "r:gz") as tar:
        archived = _message_keys(tar.getnames())
    return sorted(_message_keys(here) - archived)


def _not_purgeable(archive_dir: str, entry: dict | None, mb: dict,
                   contents: bool = False) -> str | None:
    """Why ``mb``'s store may not be deleted on the strength of its archive (None: it may).
    ``contents``: also read the archive and compare its messages with the store's."""
    if entry is None:
        return "no archive recorded; archive first"
    other = other_stores_archive(entry, mb["store"])
    if other:  # before any check of the archive or the store: neither is about this store
        return f"{other}; move the old record aside in the manifest, then archive this store"
    why = verified(archive_dir, entry)
    if why:
        return why
    if not isinstance(entry.get("newest"), (int, float)) or isinstance(entry["newest"], bool):
        # "mail arrived after its archive" would be a guess: the record cannot tell
        return ("the archive record has no 'newest' message time (an older manifest, or "
                "edited by hand), so it cannot show that no mail arrived after it; archive "
                "this store again first")
    if changed_since(entry, mb["store"]):
        return "mail arrived after its archive was made; archive it again first"
    if contents and os.path.isdir(mb["store"]):
        missing = missing_from_archive(archive_dir, entry, mb["store"])
        if missing:
            return (f"{len(missing)} message(s) of the store are not in its archive (first: "
                    f"{missing[0]}); archive it again first")
    return None


def _ldap(uri: str):  # pragma: no cover - needs a live slapd
    # The one ldapi + SASL EXTERNAL helper (module_utils/mailgov_ldapi.py); imported here so
    # the pure functions above load without Ansible's module_utils (tests/unit).
    from ansible.module_utils.mailgov_ldapi import connect

    return connect(uri)


def entry_exists(conn, dn: str) -> bool:  # pragma: no cover - needs a live slapd
    from ansible.module_utils.mailgov_ldapi import entry_exists as exists

    return exists(conn, dn)


def main() -> None:  # pragma: no cover - exercised on the lab
    from ansible.module_utils.basic import AnsibleModule

    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "required": True,
                      "choices": ["archived", "verified", "purged", "restored"]},
            "mailboxes": {"type": "list", "elements": "dict", "default": []},
            "archive_dir": {"type": "path", "default": "/var/backups/mailgov/archives"},
            "dest": {"type": "path"},
            "force": {"type": "bool", "default": False},
            "ldap_uri": {"type": "str", "default": "ldapi:///"},
        },
        supports_check_mode=True,
    )
    p = module.params
    # "left", not "skipped": Ansible would show a result with a true "skipped" as a skipped task.
    out = {"archived": [], "verified": {}, "purged": [], "restored": [], "left": {}}
    try:
        manifest = read_manifest(p["archive_dir"])
        conn = None
        if p["state"] in ("archived", "purged"):  # verified, restored: archives and stores only
            try:
                conn = _ldap(p["ldap_uri"])
            except Exception:
                conn = None
        items = []
        need = {"address"} if p["state"] == "restored" else \
            {"address", "store"} if p["state"] == "verified" else {"address", "store", "dn"}
        mailboxes = p["mailboxes"]
        if p["state"] == "verified" and not mailboxes:
            # every recorded archive, with the store it was made of, from the reading of the
            # manifest they are checked against (not a second one)
            mailboxes = [{"address": a, "store": e["store"]}
                         for a, e in manifest["archives"].items()]
        for mb in mailboxes:
            if not need <= set(mb):
                raise StoreError(f"mailbox item needs {', '.join(sorted(need))}: {mb}")
            has_entry = conn is not None and bool(mb.get("dn")) and entry_exists(conn, mb["dn"])
            items.append((mb, bool(mb.get("store")) and os.path.isdir(mb["store"]), has_entry))
        now = datetime.datetime.now(datetime.UTC)
        recorded = manifest["archives"]

        if p["state"] == "archived":
            for mb, has_store, has_entry in items:
                had = recorded.get(mb["address"])
                other = other_stores_archive(had, mb["store"])
                if other:
                    # one record per address: another mailbox's archive (the address passed
                    # on) is neither replaced nor counted as this store's; it stays unarchived
                    # (and so never purged) until an admin settles it
                    out["left"][mb["address"]] = (
                        f"{other}; not archived (and so never purged): move the old record "
                        "aside in the manifest first")
                elif had is not None and not changed_since(had, mb["store"]):
                    out["left"][mb["address"]] = "already archived"
                elif not (has_store or has_entry):
                    out["left"][mb["address"]] = "already purged (no store, no entry)"
                else:
                    out["archived"].append(mb["address"])
                    if not module.check_mode:
                        recorded[mb["address"]] = make_archive(mb["store"], p["archive_dir"],
                                                               mb["address"], now)
                        manifest["archives"] = dict(sorted(recorded.items()))
                        write_manifest(p["archive_dir"], manifest)

        elif p["state"] == "verified":
            for mb, _has_store, _has_entry in items:
                why = _not_purgeable(p["archive_dir"], recorded.get(mb["address"]), mb)
                if why:
                    out["left"][mb["address"]] = why
                else:
                    # keyed by the store archived: what the planner's `archived` wants
                    out["verified"][recorded[mb["address"]]["store"]] = \
                        recorded[mb["address"]]["sha256"]

        elif p["state"] == "purged":
            if conn is None:
                raise StoreError(f"cannot read the directory over {p['ldap_uri']} (python3-ldap "
                                 "and slapd on this host): nothing purged")
            todo = []
            for mb, has_store, has_entry in items:
                if has_entry:
                    out["left"][mb["address"]] = ("entry still in the directory (the reconcile "
                                                  "deletes it first, under its lock)")
                    continue
                if not has_store:
                    out["left"][mb["address"]] = "already purged"
                    continue
                why = _not_purgeable(p["archive_dir"], recorded.get(mb["address"]), mb,
                                     contents=True)
                if why:
                    raise StoreError(f"{mb['address']}: {why}; nothing purged")
                todo.append(mb)
            for mb in todo:  # every archive checked before any delete
                out["purged"].append(mb["address"])
                if not module.check_mode:
                    shutil.rmtree(mb["store"])

        else:  # restored
            if len(items) != 1:
                raise StoreError("restore one mailbox at a time")
            mb = items[0][0]
            entry = recorded.get(mb["address"])
            if entry is None:
                raise StoreError(f"{mb['address']}: no archive recorded in the manifest")
            dest = p["dest"] or entry["store"]
            if module.check_mode:
                why = verified(p["archive_dir"], entry)
                if why:
                    raise StoreError(why)
            else:
                out["files"] = restore(p["archive_dir"], entry, dest, p["force"])
            out["restored"].append(mb["address"])
            out["dest"] = dest
    except StoreError as exc:
        module.fail_json(msg=str(exc), **out)
    except (OSError, ValueError, tarfile.TarError) as exc:
        module.fail_json(msg=f"{type(exc).__name__}: {exc}", **out)
    except Exception as exc:
        module.fail_json(msg=f"{type(exc).__name__}: {exc}", **out)
    changed = bool(out["archived"] or out["purged"] or out["restored"])
    module.exit_json(changed=changed, manifest=manifest, **out)


if __name__ == "__main__":
    main()
