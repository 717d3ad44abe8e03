"""Webmail benchmark against a lab instance: login + inbox through Roundcube vs a bare IMAP
login + SELECT, for the same accounts, N concurrent sessions, median and 95th percentile.

    MAILGOV_LAB_ID=4 .venv/bin/python benchmarks/bench_webmail.py [--sessions 50]

What one session is:
- **webmail**: GET /mail/ (the login page: session cookie, request token), POST the login,
  GET the inbox page it redirects to, then the message list request the inbox page makes
  (``_action=list``, as the browser's script does). Over HTTPS with the lab CA verified.
- **bare IMAP**: IMAP4_SSL to Dovecot (993, CA verified), LOGIN, SELECT INBOX, LOGOUT.
All sessions of a kind start together (a barrier) from a thread each. The accounts are
``--sessions`` throw-away mailboxes made on the provider for the run (ldapi as root, over the
lab's ssh) and removed at the end. Traffic goes only to the lab's own addresses
(10.210.<id>.0/24); the controller is fail2ban-exempt in the lab inventory.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import imaplib
import re
import secrets
import shlex
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from lab import labenv  # noqa: E402

HOST = "mail1"
NAME = "mail1.monre.gov.vn"
DOMAIN = "monre.gov.vn"
BASE = "dc=monre,dc=gov,dc=vn"
PATH = "/mail/"


def ssh(lab: Path, cmd: str, stdin: str | None = None) -> str:
    out = subprocess.run(["ssh", "-F", str(lab / "ssh_config"), HOST, cmd], input=stdin,
                         capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise SystemExit(f"bench_webmail: on {HOST}: {out.stderr.strip()[-400:]}")
    return out.stdout


def make_accounts(lab: Path, n: int) -> list[tuple[str, str, str]]:
    run = secrets.token_hex(3)
    accounts, ldif = [], []
    for i in range(n):
        uid = f"bench-{run}-{i:02d}"
        pw = "Bw7#" + secrets.token_urlsafe(12) + "!q"
        dn = f"uid={uid},ou=people,{BASE}"
        accounts.append((dn, f"{uid}@{DOMAIN}", pw))
        ldif.append("\n".join([
            f"dn: {dn}", "objectClass: top", "objectClass: inetOrgPerson",
            "objectClass: PostfixBookMailAccount", f"uid: {uid}", f"cn: Bench {i}",
            "sn: Bench", f"mail: {uid}@{DOMAIN}", "mailEnabled: TRUE", "mailQuota: 102400",
            f"mailHomeDirectory: /var/vmail/{DOMAIN}/{uid}", f"userPassword: {pw}", ""]))
    ssh(lab, "ldapadd -Q -Y EXTERNAL -H ldapi:/// >/dev/null", "\n".join(ldif))
    # A password set by root carries pwdReset (Dovecot would refuse it): clear it.
    clear = "".join(f"dn: {dn}\nchangetype: modify\ndelete: pwdReset\n\n" for dn, _, _ in accounts)
    subprocess.run(["ssh", "-F", str(lab / "ssh_config"), HOST,
                    "ldapmodify -c -Q -Y EXTERNAL -H ldapi:/// >/dev/null 2>&1 || true"],
                   input=clear, text=True, timeout=300)
    return accounts


def remove_accounts(lab: Path, accounts: list[tuple[str, str, str]]) -> None:
    dns = " ".join(shlex.quote(dn) for dn, _, _ in accounts)
    homes = " ".join(shlex.quote(f"/var/vmail/{DOMAIN}/{m.split('@')[0]}") for _, m, _ in accounts)
    ssh(lab, f"ldapdelete -c -Q -Y EXTERNAL -H ldapi:/// {dns}; rm -rf {homes}")


def webmail_session(ip: str, ctx: ssl.SSLContext, user: str, pw: str) -> None:
    jar = http.cookiejar.CookieJar()
    op = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx),
                                     urllib.request.HTTPCookieProcessor(jar))
    base = f"https://{NAME}{PATH}"
    page = op.open(base, timeout=120).read().decode()
    tok = re.search(r'name="_token" value="([^"]+)"', page)
    if not tok:
        raise RuntimeError("no login token")
    form = urllib.parse.urlencode({"_token": tok.group(1), "_task": "login",
                                   "_action": "login", "_user": user, "_pass": pw}).encode()
    inbox = op.open(base + "?_task=login", data=form, timeout=120).read().decode()
    m = re.search(r'"request_token":"([^"]+)"', inbox)
    if not m or '"task":"mail"' not in inbox:
        raise RuntimeError("login refused")
    req = urllib.request.Request(base + "?_task=mail&_action=list&_mbox=INBOX&_remote=1",
                                 headers={"X-Roundcube-Request": m.group(1),
                                          "X-Requested-With": "XMLHttpRequest"})
    body = op.open(req, timeout=120).read().decode()
    if '"action":"list"' not in body:
        raise RuntimeError("no message list")


def imap_session(ip: str, ctx: ssl.SSLContext, user: str, pw: str) -> None:
    with imaplib.IMAP4_SSL(NAME, 993, ssl_context=ctx, timeout=120) as imap:
        imap.login(user, pw)
        typ, _ = imap.select("INBOX")
        if typ != "OK":
            raise RuntimeError("SELECT refused")
        imap.logout()


def run_all(kind: Callable[..., None], ip: str, ctx: ssl.SSLContext,
            accounts: list[tuple[str, str, str]]) -> tuple[list[float], list[str]]:
    barrier = threading.Barrier(len(accounts))
    times: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def one(user: str, pw: str) -> None:
        barrier.wait()
        t0 = time.perf_counter()
        try:
            kind(ip, ctx, user, pw)
        except Exception as exc:
            with lock:
                errors.append(f"{user}: {type(exc).__name__}: {exc}")
            return
        with lock:
            times.append(time.perf_counter() - t0)

    threads = [threading.Thread(target=one, args=(m, pw)) for _, m, pw in accounts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return times, errors


def p95(xs: list[float]) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(0.95 * len(s)) - 1))]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sessions", type=int, default=50)
    args = ap.parse_args(argv)
    if not 1 <= args.sessions <= 200:
        print("bench_webmail: --sessions must be 1..200", file=sys.stderr)
        return 2
    lab_id = labenv.lab_id()
    lab = labenv.lab_dir(REPO, lab_id)
    ip = f"10.210.{lab_id}.11"
    ca = lab / "pki" / "ca.crt"
    if not (lab / "ssh_config").is_file() or not ca.is_file():
        print(f"bench_webmail: lab {lab_id} is not up ({lab})", file=sys.stderr)
        return 2
    # The lab has no DNS: the site's name resolves to the lab address here only.
    real = socket.getaddrinfo
    socket.getaddrinfo = lambda h, *a, **k: real(ip if h == NAME else h, *a, **k)  # type: ignore[assignment]
    ctx = ssl.create_default_context(cafile=str(ca))
    accounts = make_accounts(lab, args.sessions)
    try:
        # Each account logs in once over IMAP first: Dovecot makes its mail store (a first
        # login's cost, the same for both kinds afterwards).
        run_all(imap_session, ip, ctx, accounts)
        rows = []
        for label, kind in (("webmail login + inbox", webmail_session),
                            ("bare IMAP login + SELECT", imap_session)):
            times, errors = run_all(kind, ip, ctx, accounts)
            if errors:
                print(f"{label}: {len(errors)} failed, e.g. {errors[0]}", file=sys.stderr)
            if not times:
                return 1
            rows.append((label, len(times), statistics.median(times), p95(times)))
        print(f"{args.sessions} concurrent sessions against lab {lab_id} ({NAME} = {ip})")
        print(f"{'':28} {'ok':>4} {'median s':>9} {'p95 s':>8}")
        for label, ok, med, top in rows:
            print(f"{label:28} {ok:>4} {med:>9.3f} {top:>8.3f}")
        print(f"ratio webmail/IMAP: median {rows[0][2] / rows[1][2]:.1f}x, "
              f"p95 {rows[0][3] / rows[1][3]:.1f}x")
        return 0 if all(r[1] == args.sessions for r in rows) else 1
    finally:
        remove_accounts(lab, accounts)


if __name__ == "__main__":
    sys.exit(main())
