"""Lab only: give a few mailboxes known passwords, for the tests that log in as a user.

    .venv/bin/python lab/test_passwords.py [DATA_FILE]

Which mailboxes: the first ``COUNT`` active personal mailboxes of the data file, plus the
delegates of the first unit mailbox that has delegates (the delegation tests), plus one
suspended personal mailbox (its right password must be refused; it is locked again at once;
kept in ``test-suspended.json`` beside it). Their
passwords are kept in ``<lab dir>/secrets/test-mailboxes.json`` (0600, ``{"<address>":
"<password>"}``), generated on first use, and set on the provider (Password Modify, RFC 3062,
over the reconciler's TLS connection) only where a bind with them fails. ``pwdReset`` is
cleared: these passwords are meant to be used as set, and Dovecot refuses a login while it
is there (docs/reconcile.md, "Lifecycle").

This is lab plumbing, not the production path: `mailgov apply` never sets passwords. It reads
only the lab's state dir (lab/labenv.py): the lab CA, the reconciler's password and the
provider's address, identical for the lab inventory and the production-shaped one.
scripts/test runs it before the lab suites; tests that re-create mailboxes call ensure().
"""

from __future__ import annotations

import json
import os
import secrets
import string
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: `lab` and `mailgov` from the checkout
    sys.path.insert(0, str(REPO))

from lab import labenv  # noqa: E402

COUNT = 3
DEFAULT_DATA = REPO / "data" / "mailboxes.yaml"


def chosen_addresses(desired: Any, count: int = COUNT) -> list[str]:
    """The mailboxes that get a known password, full addresses, in the file's order."""
    active = [m for m in desired.mailboxes if m.state == "active"]
    chosen = [m.address for m in active if m.kind == "personal"][:count]
    first = next((u for u in desired.units if u.mailbox.delegates), None)
    if first is not None:
        ok = {m.address for m in active}
        chosen += [d for d in first.mailbox.delegates if d in ok]
    return [desired.address(a) for a in dict.fromkeys(chosen)]


def suspended_address(desired: Any) -> str | None:
    """One suspended personal mailbox: the tests prove its right password is refused."""
    m = next((m for m in desired.mailboxes if m.state == "suspended" and m.kind == "personal"),
             None)
    return None if m is None else desired.address(m.address)


def new_password() -> str:
    # A random part plus one of each character class, for any quality policy.
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(16)) + ".Aa7"


def kept_passwords(path: Path, addresses: Iterable[str]) -> dict[str, str]:
    """The file's passwords for ``addresses``, adding one for each missing; the file is
    rewritten to hold exactly these (tests log in with every one it names)."""
    try:
        known: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        known = {}
    wanted = list(addresses)
    kept = {a: known.get(a) or new_password() for a in wanted}
    if kept != known:
        known = kept
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(known, fh, ensure_ascii=False, indent=2)
            fh.write("\n")
        os.replace(tmp, path)
    return {a: known[a] for a in wanted}


@dataclass(frozen=True)
class TestPasswords:
    active: dict[str, str]  # address -> password, each accepted by a bind
    suspended: tuple[str, str] | None  # (address, password) of a locked entry

    __test__ = False  # not a pytest test class


def ensure(data_file: Path = DEFAULT_DATA, lab_dir: Path | None = None) -> TestPasswords:
    """Make the chosen mailboxes accept their known passwords.

    Raises RuntimeError (one line) when the data is invalid or the provider unusable.
    """
    from mailgov.apply import set_passwords
    from mailgov.live import LiveError, connect
    from mailgov.validate import validate

    lab_id = labenv.lab_id()
    state = lab_dir or labenv.lab_dir(REPO, lab_id)
    result = validate(data_file)
    if not result.ok:
        raise RuntimeError(f"{data_file}: {result.problems[0].format()}")
    desired = result.directory
    base_dn = desired.organization.base_dn
    suspended = suspended_address(desired)
    active = kept_passwords(state / "secrets" / "test-mailboxes.json", chosen_addresses(desired))
    passwords = dict(active)
    # Kept apart: tests that log in with every test mailbox read only the first file. A new
    # password on every run: no bind can tell whether a locked entry has the stored one, and
    # setting the same one again is refused by the password history.
    if suspended:
        fresh = state / "secrets" / "test-suspended.json"
        fresh.unlink(missing_ok=True)
        passwords |= kept_passwords(fresh, [suspended])
    uri = f"ldap://10.210.{lab_id}.11"  # mail1, the provider; its certificate carries the IP
    ca = str(state / "pki" / "ca.crt")
    reconciler = (state / "secrets" / "ldap-mailgov").read_text(encoding="utf-8").strip()
    def dn_of(address: str) -> str:
        return f"uid={address.split('@', 1)[0]},ou=people,{base_dn}"

    to_set: dict[str, str] = {}
    for address, password in passwords.items():
        if address == suspended:  # locked: set on every run (see above)
            to_set[dn_of(address)] = password
            continue
        try:
            connect(uri, dn_of(address), password, ca, 5).unbind()
        except LiveError:
            to_set[dn_of(address)] = password
    if to_set:
        try:
            conn = connect(uri, f"cn=mailgov,ou=services,{base_dn}", reconciler, ca, 10)
        except LiveError as exc:
            raise RuntimeError(str(exc)) from None
        # An administrator's reset removes the ppolicy lock: the suspended one gets it back.
        errors = set_passwords(conn, to_set, relock=[dn_of(suspended)] if suspended else [],
                               clear_reset=True)
        conn.unbind()
        if errors:
            raise RuntimeError("; ".join(e.format() for e in errors))
    return TestPasswords(active, (suspended, passwords[suspended]) if suspended else None)


def main(argv: list[str]) -> int:
    data_file = Path(argv[0]) if argv else Path(os.environ.get("MAILGOV_DATA") or DEFAULT_DATA)
    try:
        passwords = ensure(data_file)
    except (RuntimeError, OSError) as exc:
        print(f"test_passwords: {exc}", file=sys.stderr)
        return 1
    print(f"test_passwords: {len(passwords.active)} lab test mailbox(es) accept their known "
          f"password; suspended with a known password: "
          f"{passwords.suspended[0] if passwords.suspended else 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
