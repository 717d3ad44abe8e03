"""One reconcile apply at a time: a lock entry in the directory itself.

Two applies running at once would each plan from the same live state and then interleave
their writes (one creating what the other deletes). The lock lives where the writes go, so
it works for any number of controllers (an admin's laptop and CI):

    cn=reconcile-lock,ou=services,BASE   objectClass applicationProcess
    description: owner=<user@host pid N>;since=<UTC>;expires=<UTC>;token=<random>
                 [;commit=<data commit>;ref=<request reference>]

- **Acquire** = LDAP add of that entry. An add is atomic on the server: of two applies, one
  gets ``entryAlreadyExists``.
- **Stale** after ``expires``, or at once when the holder ran on this machine and its process
  is gone (an apply whose connection died cannot delete its lock): it is taken over with
  ONE modify that deletes the exact old value and adds ours. Two takers of the same stale lock
  cannot both win: the second's delete no longer matches (``noSuchAttribute``), so the whole
  modify fails (LDAP modifies are atomic).
- **Refresh** pushes ``expires`` forward the same way (a long apply keeps its lock).
- **Release** deletes the entry, only while it still carries our token.

The last two fields are the audit trail (docs/reconcile.md, "Audit"): the provider's access
log records the lock's add and each refresh with their values, so every write the reconciler
makes while it holds the lock is tied to the data commit and the request it applies.

The reconciler's account may write that one DN and nothing else under ou=services
(roles/openldap access rules).
"""

from __future__ import annotations

import getpass
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from ldap3 import BASE, MODIFY_ADD, MODIFY_DELETE, Connection
from ldap3.core.exceptions import LDAPException

from mailgov.i18n import _

LOCK_RDN = "cn=reconcile-lock"
DEFAULT_TTL = 3600  # seconds; an apply refreshes it, so only a dead holder's lock expires


class LockError(Exception):
    """The lock could not be taken; the message says who holds it (one line)."""


@dataclass(frozen=True)
class Holder:
    owner: str
    since: datetime
    expires: datetime
    token: str
    raw: str  # the exact stored value (for compare-and-swap)

    @classmethod
    def parse(cls, raw: str) -> Holder:
        fields = dict(p.split("=", 1) for p in raw.split(";") if "=" in p)
        try:
            since = datetime.fromisoformat(fields["since"])
            expires = datetime.fromisoformat(fields["expires"])
        except (KeyError, ValueError):
            # Unreadable lock value: treat as expired long ago so it can be taken over.
            since = expires = datetime.fromtimestamp(0, UTC)
        return cls(fields.get("owner", "?"), since, expires, fields.get("token", ""), raw)

    def dead_here(self) -> bool:
        """The holder ran on this machine and its process is gone (it died holding the lock).

        Owner is ``user@host pid N``; a lock from another machine is judged by expiry only.
        """
        try:
            where, pid_text = self.owner.rsplit(" pid ", 1)
            pid = int(pid_text)
        except ValueError:
            return False
        if where.rsplit("@", 1)[-1] != socket.gethostname() or pid == os.getpid():
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def describe(self) -> str:
        return (_("owner {owner}, since {since:%Y-%m-%d %H:%M:%S} UTC, expires "
                  "{expires:%Y-%m-%d %H:%M:%S} UTC").format(
            owner=self.owner, since=self.since, expires=self.expires))


def default_owner() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()} pid {os.getpid()}"


def audit_fields(commit: str | None, ref: str | None) -> str:
    """The lock value's audit suffix: ``;commit=…;ref=…`` (``;`` and ``=`` cannot occur in
    a value: they are replaced, and a value is cut at 200 characters)."""
    out = ""
    for key, value in (("commit", commit), ("ref", ref)):
        if value:
            clean = "".join("_" if ch in ";=\r\n" or ord(ch) < 32 else ch for ch in value)
            out += f";{key}={clean[:200]}"
    return out


def _stamp(t: float) -> str:
    return datetime.fromtimestamp(int(t), UTC).isoformat()


class ReconcileLock:
    """Context manager around the lock entry; see the module docstring.

    ``wait``: seconds to keep trying while another apply holds the lock (0 = fail at once).
    """

    def __init__(self, conn: Connection, base_dn: str, *, owner: str | None = None,
                 ttl: int = DEFAULT_TTL, wait: float = 0, poll: float = 1.0,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep, audit: str = "") -> None:
        self.conn = conn
        self.dn = f"{LOCK_RDN},ou=services,{base_dn}"
        self.owner = owner or default_owner()
        self.ttl = ttl
        self.wait = wait
        self.poll = poll
        self._clock = clock
        self._sleep = sleep
        self._token = secrets.token_hex(8)
        self.audit = audit  # ";commit=…;ref=…" or "" (see audit_fields)
        self._value: str | None = None  # what we stored, while held
        self._since = 0.0

    # -- values ---------------------------------------------------------------------------
    def _new_value(self) -> str:
        now = self._clock()
        since = self._since or now
        return (f"owner={self.owner};since={_stamp(since)};"
                f"expires={_stamp(now + self.ttl)};token={self._token}{self.audit}")

    def _error(self) -> str:
        res = self.conn.result or {}
        return f"{res.get('description', 'error')}: {(res.get('message') or '').strip()}"

    def _read(self) -> Holder | None:
        ok = self.conn.search(self.dn, "(objectClass=*)", BASE, attributes=["description"])
        if not ok:
            if (self.conn.result or {}).get("description") == "noSuchObject":
                return None
            raise LockError(_("cannot read the reconcile lock {dn}: {reason}").format(
                dn=self.dn, reason=self._error()))
        values = self.conn.entries[0].entry_attributes_as_dict.get("description", [])
        return Holder.parse(str(values[0]) if values else "")

    def _swap(self, old: str, new: str) -> bool:
        """Replace exactly ``old`` by ``new`` in one atomic modify (False: someone else won)."""
        return bool(self.conn.modify(self.dn, {"description": [(MODIFY_DELETE, [old]),
                                                               (MODIFY_ADD, [new])]}))

    # -- API ------------------------------------------------------------------------------
    @property
    def held(self) -> bool:
        return self._value is not None

    def acquire(self) -> ReconcileLock:
        deadline = self._clock() + self.wait
        try:
            while True:
                self._since = self._clock()
                value = self._new_value()
                if self.conn.add(self.dn, ["top", "applicationProcess"],
                                 {"cn": LOCK_RDN.split("=", 1)[1], "description": value}):
                    self._value = value
                    return self
                if (self.conn.result or {}).get("description") != "entryAlreadyExists":
                    raise LockError(_("cannot take the reconcile lock {dn}: {reason}").format(
                        dn=self.dn, reason=self._error()))
                holder = self._read()
                if holder is None:
                    continue  # released between our add and our read: try again
                if holder.expires.timestamp() <= self._clock() or holder.dead_here():
                    if self._swap(holder.raw, value):
                        self._value = value
                        return self
                    continue  # another apply took the stale lock first; look again
                if self._clock() >= deadline:
                    raise LockError(_("another apply is running ({holder}); try again when it "
                                      "has finished").format(holder=holder.describe()))
                self._sleep(min(self.poll, max(0.05, deadline - self._clock())))
        except LDAPException as exc:
            raise LockError(_("cannot take the reconcile lock {dn}: {error}").format(
                dn=self.dn, error=exc)) from None

    def refresh(self) -> None:
        """Push the expiry forward (call during a long apply)."""
        if self._value is None:
            return
        value = self._new_value()
        if not self._swap(self._value, value):
            raise LockError(_("lost the reconcile lock {dn} (taken over as stale?)").format(
                dn=self.dn))
        self._value = value

    def release(self, conn: Connection | None = None) -> None:
        """Delete the lock entry if it is still ours (never someone else's).

        ``conn``: a new connection, when the one the lock was taken on has died.
        """
        if self._value is None:
            return
        value, self._value = self._value, None
        if conn is not None:
            self.conn = conn
        try:
            holder = self._read()
            if holder is not None and holder.raw == value:
                self.conn.delete(self.dn)
        except (LDAPException, LockError):
            pass  # connection gone: the lock expires by itself

    def __enter__(self) -> ReconcileLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
