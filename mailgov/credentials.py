"""Initial credentials of new mailboxes (issue 4 item 4): generate, encrypt, hand over.

A new mailbox gets a random password that meets the data's password policy
(``policy.password.users``), set by the directory's Password Modify operation with
``pwdReset: TRUE`` written beside it. Dovecot refuses mail logins while ``pwdReset`` is TRUE
(with a message saying the password must be changed); the person changes it with
``ldappasswd`` (RFC 3062 over StartTLS, binding as themselves), and ppolicy clears the flag.

The passwords reach the unit's focal point (``units[].focal_point`` in the data) as one
``age``-encrypted file per unit and run: ``<dir>/<unit>-<YYYY-MM-DD>.age``. Nothing in clear
text is ever written to disk, to a log or to stdout except the JSON that the no_log Ansible task
reads (``issue`` below); the encryption runs ``age`` with the cleartext on its stdin.

Command line (run by ``playbooks/lifecycle.yml`` on the controller)::

    python -m mailgov.credentials issue --data D --out-dir DIR [--recipients-file F] \\
        --uri ldap://mail1... --bind-dn cn=mailgov,ou=services,BASE --ca-file CA < stdin.json

stdin is ``{"todo": [{"dn", "mail", "unit"}, ...], "bind_password": ...}`` (the mailboxes that
have no password yet, found on the provider). The passwords are generated, encrypted into the
artifacts, then set over StartTLS as the reconciler, all in this one process: they never pass
through Ansible. stdout is ``{"artifacts": [paths], "set": [dns]}``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import string
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from mailgov import args as arg_types
from mailgov.i18n import _
from mailgov.model import Directory, Mailbox, PasswordRules
from mailgov.naming import split_name, transliterate

# The four classes the schema allows in required_classes, and the characters of each.
# "special" avoids characters that shells, LDIF or IMAP quoting treat specially (\ " ' ` $ space)
# so a person can type the password from the handover sheet without surprises.
CLASSES: Mapping[str, str] = {
    "upper": string.ascii_uppercase,
    "lower": string.ascii_lowercase,
    "digit": string.digits,
    "special": "!#%&()*+,-./:;<=>?@[]^_{|}~",
}
# What counts as each class when a password is checked: any ASCII punctuation is special, as
# on the directory server (roles/openldap openldap__pwcheck_classes).
ACCEPTED_CLASSES: Mapping[str, str] = {**CLASSES, "special": string.punctuation}
# Look-alike characters left out so a password read from a sheet is typed right.
_AMBIGUOUS = frozenset("Il1O0")
DEFAULT_LENGTH = 16  # longer than any policy minimum seen (8-10); policy.min_length wins if larger
MIN_TOKEN = 3  # personal-data tokens shorter than this are not checked (too many false hits)


class CredentialError(RuntimeError):
    """A one-line, user-facing reason why credentials could not be issued."""


def _alphabet(cls: str) -> str:
    return "".join(c for c in CLASSES[cls] if c not in _AMBIGUOUS)


def personal_tokens(mailbox: Mailbox | None = None, *, local: str | None = None,
                    name: str | None = None, birth: str | None = None) -> tuple[str, ...]:
    """Lower-case strings a password must not contain (policy ``forbid_personal_data``).

    The account name (local part, and its dot/dash-separated pieces), every syllable of the
    full name (transliterated), the full name run together, and the birth year/month.
    """
    if mailbox is not None:
        local, name, birth = mailbox.address, mailbox.name, mailbox.birth
    out: set[str] = set()
    if local:
        out.add(local.lower())
        out.update(p for p in local.lower().replace("-", ".").replace("_", ".").split("."))
    if name:
        parts = split_name(name)
        out.update((parts.surname, *parts.middle, parts.given, transliterate(name)))
    if birth:
        year, _sep, month = birth.partition("-")
        out.update((year, f"{month}{year}", f"{year}{month}"))
    return tuple(sorted(t for t in out if len(t) >= MIN_TOKEN))


def check_password(password: str, rules: PasswordRules,
                   forbidden: Iterable[str] = ()) -> list[str]:
    """What is wrong with ``password`` under ``rules`` (empty list: acceptable)."""
    problems = []
    if len(password) < rules.min_length:
        problems.append(_("shorter than {min_length} characters").format(
            min_length=rules.min_length))
    for cls in rules.required_classes:
        if not any(c in ACCEPTED_CLASSES[cls] for c in password):
            problems.append(_("no {cls} character").format(cls=cls))
    if rules.forbid_personal_data:
        # Folded like the tokens, so "Tuấn", "TUAN" and "tu-an" all hide "tuan" (the server's
        # check module, packaging/slapd-pwcheck, folds the same way).
        folded = transliterate(password)
        problems.extend(_("contains personal data {t!r}").format(
            t=t) for t in forbidden if t and t in folded)
    return problems


def generate_password(rules: PasswordRules, forbidden: Iterable[str] = (), *,
                      length: int | None = None) -> str:
    """A random password (``secrets``) that :func:`check_password` accepts.

    One character of each required class, the rest from all allowed classes, shuffled with
    ``secrets.SystemRandom``. Retries in the rare case personal data appears by chance.
    """
    forbidden = tuple(forbidden)
    n = max(length or DEFAULT_LENGTH, rules.min_length, len(rules.required_classes))
    pool = "".join(_alphabet(c) for c in CLASSES)
    rng = secrets.SystemRandom()
    for _try in range(100):
        chars = [secrets.choice(_alphabet(c)) for c in rules.required_classes]
        chars += [secrets.choice(pool) for _i in range(n - len(chars))]
        rng.shuffle(chars)
        password = "".join(chars)
        if not check_password(password, rules, forbidden):
            return password
    raise CredentialError(_("could not generate a password that meets the "
                            "policy"))  # pragma: no cover


@dataclass(frozen=True)
class Credential:
    """One issued initial password, for one mailbox."""

    dn: str
    mail: str
    unit: str
    password: str


def artifact_path(out_dir: Path, unit: str, day: date) -> Path:
    """``<out_dir>/<unit>-<YYYY-MM-DD>.age``; a second run on the same day gets ``-2`` etc.

    Never overwrites: an earlier file may hold the only copy of passwords already set.
    """
    base = out_dir / f"{unit}-{day.isoformat()}.age"
    n = 2
    path = base
    while path.exists():
        path = out_dir / f"{unit}-{day.isoformat()}-{n}.age"
        n += 1
    return path


def render_sheet(unit: str, creds: Sequence[Credential], day: date, *,
                 unit_name: str = "", change_hint: str = "") -> str:
    """The handover text that gets encrypted (never written in clear)."""
    lines = [
        f"# Mật khẩu ban đầu / Initial passwords — {unit_name or unit} ({day.isoformat()})",
        "# Người dùng phải đổi mật khẩu trước khi dùng hộp thư.",
        "# The user must change the password before the mailbox can be used.",
    ]
    if change_hint:
        lines.append(f"# {change_hint}")
    lines.append("")
    lines.extend(f"{c.mail}\t{c.password}" for c in sorted(creds, key=lambda c: c.mail))
    return "\n".join(lines) + "\n"


def age_binary() -> str:
    path = shutil.which("age")
    if not path:
        raise CredentialError(_("the 'age' program is not installed (Debian package: age)"))
    return path


def encrypt_age(plaintext: str, recipients: Sequence[str], dest: Path) -> Path:
    """Encrypt ``plaintext`` to ``dest`` for every recipient (age public keys ``age1…``).

    The cleartext goes through age's stdin only; the file appears (mode 0600) only once
    complete, so a failed run leaves nothing half-written.
    """
    if not recipients:
        raise CredentialError(_("no age recipient for {name}: set the unit's "
                                "focal_point.age_recipient in the data").format(name=dest.name))
    for r in recipients:
        if not r.startswith("age1") or any(c.isspace() for c in r):
            raise CredentialError(_("not an age public key: {key}…").format(key=r[:12]))
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-", suffix=".age")
    os.close(fd)
    argv = [age_binary(), "--encrypt", "--armor", "-o", tmp]
    for r in recipients:
        argv += ["-r", r]
    try:
        proc = subprocess.run(argv, input=plaintext.encode(), capture_output=True, check=False)
        if proc.returncode != 0:
            raise CredentialError(_("age failed: {stderr}").format(
                stderr=proc.stderr.decode(errors='replace').strip()))
        os.chmod(tmp, 0o600)
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


def unit_recipients(directory: Directory, unit_id: str,
                    extra: Mapping[str, Sequence[str]] | None = None) -> tuple[str, ...]:
    """age recipients for a unit: its ``focal_point.age_recipient`` plus any ``extra``
    (a file of ``unit: [keys]`` used in the lab or for an IT-department escrow key)."""
    keys: list[str] = []
    for u in directory.units:
        fp = getattr(u, "focal_point", None)
        if u.id == unit_id and fp is not None and getattr(fp, "age_recipient", None):
            keys.append(fp.age_recipient)
    if extra:
        keys.extend(extra.get(unit_id, ()))
        keys.extend(extra.get("*", ()))
    return tuple(dict.fromkeys(keys))


def issue(directory: Directory, todo: Sequence[Mapping[str, str]], out_dir: Path, *,
          today: date, extra_recipients: Mapping[str, Sequence[str]] | None = None,
          change_url: str = "") -> tuple[list[Credential], list[Path], dict[str, list[str]]]:
    """Generate a password for each ``todo`` item and write one artifact per unit.

    ``todo`` items: ``{"dn", "mail", "unit"}`` (unit = unit id, the entry's ``ou``).
    Returns (credentials, artifacts, waiting). A unit with no age recipient (no
    ``focal_point.age_recipient``, no extra recipient) gets nothing: no password is generated
    for its people, so none is ever set that nobody can read. They are returned in ``waiting``
    (unit id -> addresses) and are issued on the first run after a key is given: a missing
    key is a unit's pending task, not a failed run (docs/reconcile.md, "Initial credentials").
    """
    rules = directory.policy.password_users
    by_local = {m.address: m for m in directory.mailboxes}
    by_unit: dict[str, list[Credential]] = {}
    for item in todo:
        local = item["mail"].split("@", 1)[0]
        forbidden = personal_tokens(by_local[local]) if local in by_local else \
            personal_tokens(local=local)
        cred = Credential(item["dn"], item["mail"], item["unit"],
                          generate_password(rules, forbidden))
        by_unit.setdefault(item["unit"], []).append(cred)
    recipients = {u: unit_recipients(directory, u, extra_recipients) for u in by_unit}
    waiting = {u: [c.mail for c in by_unit[u]] for u in sorted(by_unit) if not recipients[u]}
    names = {u.id: u.name for u in directory.units}
    paths = []
    creds: list[Credential] = []
    for unit, items in sorted(by_unit.items()):
        if unit in waiting:
            continue
        sheet = render_sheet(unit, items, today, unit_name=names.get(unit, ""),
                             change_hint=_change_hint(change_url))
        paths.append(encrypt_age(sheet, recipients[unit], artifact_path(out_dir, unit, today)))
        creds.extend(items)
    return creds, paths, waiting


def _change_hint(change_url: str) -> str:
    if change_url:
        return f"Đổi mật khẩu tại / change it at: {change_url}"
    return ("Đổi mật khẩu / change it: ldappasswd -ZZ -H ldap://<provider> "
            "-D uid=<local>,ou=people,<base DN> -W -S")


# --------------------------------------------------------------------------- LDAP side


def connect(uri: str, bind_dn: str, password: str, ca_file: str, timeout: int = 10) -> Any:
    """A bound ldap3 connection over TLS (StartTLS on ldap://, or ldaps://), CA verified:
    the reconciler's one connection (mailgov.live.connect), its errors as CredentialError."""
    from mailgov.live import LiveError
    from mailgov.live import connect as live_connect

    try:
        return live_connect(uri, bind_dn, password, ca_file, timeout)
    except LiveError as exc:
        raise CredentialError(str(exc)) from None


def set_initial_password(conn: Any, dn: str, password: str) -> None:
    """Password Modify (RFC 3062) as the reconciler, then ``pwdReset: TRUE``.

    ``conn`` is a bound ldap3 Connection over TLS. ppolicy removes an administrator lock when
    a password is reset, so this is only for active mailboxes (docs/directory.md).
    """
    from ldap3 import MODIFY_REPLACE  # I/O dependency kept out of the pure helpers above

    if not conn.extend.standard.modify_password(user=dn, new_password=password):
        raise CredentialError(_("password modify refused for {dn}: {description} {message}").format(
            dn=dn, description=conn.result.get('description'), message=conn.result.get('message')))
    if not conn.modify(dn, {"pwdReset": [(MODIFY_REPLACE, ["TRUE"])]}):
        raise CredentialError(_("cannot set pwdReset on {dn}: {description}").format(
            dn=dn, description=conn.result.get('description')))


# ----------------------------------------------------------------------- state guard


def state_path_problems(path: Path, uid: int | None = None) -> list[str]:
    """Why ``path`` (the handover directory or the recipients file) is not safe to trust.

    Whoever can write the recipients file adds a recipient and receives every initial
    password; whoever can write the handover directory swaps the files. So, as sshd's
    StrictModes does for authorized_keys: the path and every directory above it must be owned
    by this user or root and writable by nobody else (a sticky directory such as /tmp may be
    above it), and it must not lie in a git checkout, where a CI job or a contributor's change
    writes. Nothing of it needs to exist yet: the checks run on what exists.
    """
    uid = os.geteuid() if uid is None else uid
    problems: list[str] = []
    target = Path(os.path.abspath(path))
    for node in [target, *target.parents]:
        if (node / ".git").exists():
            problems.append(_("{path} is inside the git checkout {node}: keep the lifecycle "
                              "state in a directory the inventory names outside it "
                              "(mailgov_state_dir)").format(path=path, node=node))
            break
    for node in [target, *target.parents]:
        try:
            st = node.lstat()
        except FileNotFoundError:
            continue
        except OSError as exc:
            problems.append(_("cannot check {node}: {error}").format(node=node, error=exc))
            continue
        if st.st_uid not in (uid, 0):
            problems.append(_("{node} is owned by uid {uid}, not by this user or root").format(
                node=node, uid=st.st_uid))
        sticky_dir = node != target and node.is_dir() and st.st_mode & 0o1000
        if st.st_mode & 0o022 and not sticky_dir:
            problems.append(_("{node} is writable by others (mode {mode:04o})").format(
                node=node, mode=st.st_mode & 0o7777))
    return problems


def check_state_paths(*paths: str | None) -> None:
    """CredentialError naming every problem of the given state paths (None: not used)."""
    problems = [msg for p in paths if p for msg in state_path_problems(Path(p))]
    if problems:
        raise CredentialError(_("unsafe lifecycle state: {problems}").format(
            problems="; ".join(problems)))


# --------------------------------------------------------------------------- CLI


def _load_recipients(path: str | None) -> dict[str, list[str]]:
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CredentialError(_("cannot read recipients file {path}: {error}").format(
            path=path, error=exc)) from exc
    if not isinstance(data, dict):
        raise CredentialError(_("{path}: expected {{unit: [age keys]}}").format(path=path))
    return {str(k): [str(x) for x in (v if isinstance(v, list) else [v])] for k, v in data.items()}


def _read_stdin() -> tuple[list[dict[str, str]], str | None]:
    """stdin: the todo list, or {"todo": [...], "bind_password": "..."} (password never in argv)."""
    try:
        raw = json.load(sys.stdin)
    except ValueError as exc:
        raise CredentialError(_("bad todo JSON on stdin: {error}").format(error=exc)) from exc
    if isinstance(raw, list):
        return raw, None
    if isinstance(raw, dict) and isinstance(raw.get("todo"), list):
        return raw["todo"], raw.get("bind_password")
    raise CredentialError(_("stdin must be a todo list or {todo, bind_password}"))


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m mailgov.credentials")
    sub = ap.add_subparsers(dest="cmd", required=True)
    iss = sub.add_parser("issue", help="generate, encrypt, set initial passwords")
    iss.add_argument("--data", required=True)
    iss.add_argument("--out-dir", required=True)
    iss.add_argument("--recipients-file", help="JSON {unit or '*': [age public keys]}")
    iss.add_argument("--change-url", default="",
                     help="the self-service password page, named in the handover file")
    iss.add_argument("--today", type=arg_types.day, help="YYYY-MM-DD (default: today)")
    iss.add_argument("--uri", help="set the passwords on this LDAP server (StartTLS/ldaps)")
    iss.add_argument("--bind-dn", help="the reconciler's DN (its password comes on stdin)")
    iss.add_argument("--ca-file", help="CA that signed the server's certificate")
    chk = sub.add_parser("check-state", help="refuse handover paths others can write "
                         "(or inside a git checkout)")
    chk.add_argument("--out-dir", required=True)
    chk.add_argument("--recipients-file")
    args = ap.parse_args(argv)
    if args.cmd == "check-state":
        try:
            check_state_paths(args.out_dir, args.recipients_file)
        except CredentialError as exc:
            print(_("mailgov credentials: {error}").format(error=exc), file=sys.stderr)
            return 2
        return 0
    from mailgov.validate import validate  # heavy import only for the CLI

    try:
        check_state_paths(args.out_dir, args.recipients_file)
        result = validate(args.data)
        if not result.ok or result.directory is None:
            raise CredentialError(_("{data} does not validate; run mailgov validate").format(
                data=args.data))
        todo, bind_password = _read_stdin()
        today = args.today or date.today()
        conn = None
        if args.uri and todo:
            if not (args.bind_dn and args.ca_file and bind_password):
                raise CredentialError(_("--uri needs --bind-dn, --ca-file and bind_password on "
                                        "stdin"))
            conn = connect(args.uri, args.bind_dn, bind_password, args.ca_file)
        creds, paths, waiting = issue(result.directory, todo, Path(args.out_dir), today=today,
                                      extra_recipients=_load_recipients(args.recipients_file),
                                      change_url=args.change_url)
        done: list[str] = []
        if conn is not None:
            # The artifact exists before any password is set: a password is never set that
            # nobody can read. A failure leaves the rest without a password; the next run
            # issues those again (in a new file).
            for c in creds:
                set_initial_password(conn, c.dn, c.password)
                done.append(c.dn)
            conn.unbind()
    except CredentialError as exc:
        print(_("mailgov credentials: {error}").format(error=exc), file=sys.stderr)
        return 2
    out: dict[str, Any] = {"artifacts": [str(p) for p in paths], "set": done,
                           "waiting": waiting}
    if not args.uri:  # no server given: the caller sets them (stdout goes to a no_log task)
        out["passwords"] = {c.dn: c.password for c in creds}
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
