"""The whole sample data moved to a new domain in one reviewed plan, proven with real clients
(issue 14 item 7).

On a COPY of the lab's data: `mailgov domain migrate OLD NEW --keep-until DAY` (one edit),
`mailgov plan --out plan.json` (the read-only planner's account, the reviewed plan) and
`mailgov apply plan.json --confirm` (the reconciler writes exactly that plan). A converge
limited to what learns the domains from the data (Postfix's domains and own-domain senders,
Dovecot's login filter, OpenDKIM's keys and tables, the lab's DNS zones) follows. Then:

- mail from outside over port 25 to the old and the new address of a person, a unit mailbox
  and a unit list is delivered (to the mailbox's one store, to the list's member);
- IMAP login works with the primary (new) address, and with the old one during the alias
  period (configured phones keep working);
- a message a person submits carries the new From and a DKIM signature with d=NEW, which
  dkimpy on the client verifies with the key the lab's DNS publishes for NEW (NEW's own key:
  not OLD's);
- the plan as of the end of the alias period (the planner's --today, never a wait) ends it:
  the old address is refused with the cancelled-address text, the new one still receives.

Afterwards the lab is put back: the original data applied, the same converge with it.

    MAILGOV_LAB_ID=N .venv/bin/python -m pytest -m lab tests/lab/test_domain_migration.py
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from email.message import EmailMessage
from email.utils import parseaddr
from pathlib import Path
from typing import Any

import pytest
from conftest import DATA_FILE, LAB_DIR, REPO, Result
from test_reorganise import _delivered, _rcpt, _send

from mailgov.loader import load

pytestmark = pytest.mark.lab

NEW = "mae.gov.vn"
KEEP_DAYS = 30
MAILGOV = REPO / ".venv" / "bin" / "mailgov"
REASON = "lab proof of issue 14: domain migration"
# What learns the domains from the data (the `domains` tag, README "Running one concern"):
# Postfix (main.cf, own-domain senders), Dovecot's login filter, OpenDKIM (keys, tables), the
# MTA-STS site, the lab's DNS zones. One run of the three playbooks; cost: docs/reconcile.md.
CONVERGE = ("mailflow.yml", "security.yml", "dns.yml")

# Runs on the client: dkimpy asks the lab's DNS (the client's resolver) for the key.
VERIFY = r"""
import json, sys, dkim
msg = open(sys.argv[1], "rb").read()
d = dkim.DKIM(msg)
try:
    ok = d.verify()
except dkim.ValidationError:
    ok = False
print(json.dumps({"ok": bool(ok), "domain": (d.domain or b"").decode(),
                  "selector": (d.selector or b"").decode()}))
"""


def _mailgov(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(MAILGOV), *args], cwd=REPO, capture_output=True, text=True,
                          timeout=900, check=False)


def _live(account: str) -> list[str]:
    return ["--ldap-uri", "ldap://" + _provider(), "--ca-file", str(LAB_DIR / "pki" / "ca.crt"),
            "--bind-dn", f"cn={account},ou=services,dc=monre,dc=gov,dc=vn",
            "--password-file", str(LAB_DIR / "secrets" / f"ldap-{account}")]


def _provider() -> str:
    return f"10.210.{int(os.environ.get('MAILGOV_LAB_ID') or 0)}.11"


def issue_mta_sts_certificate(domain: str) -> Path:
    """mta-sts.<domain>'s certificate from the lab CA into pki__ca_dir, as a site's CA hands
    one over for a new domain (lab/production-inventory issues the lab domain's)."""
    pki = LAB_DIR / "pki"
    name = f"mta-sts.{domain}"
    if (pki / f"{name}.crt").exists():
        return pki / f"{name}.crt"
    ext = pki / f"{name}.ext"
    ext.write_text("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
                   "extendedKeyUsage=serverAuth\n")
    for cmd in (["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-out", f"{name}.key"],
                ["req", "-new", "-key", f"{name}.key", "-subj", f"/CN={name}",
                 "-addext", f"subjectAltName=DNS:{name}", "-out", f"{name}.csr"],
                ["x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-sha256", "-days", "90", "-copy_extensions", "copy",
                 "-extfile", ext.name, "-out", f"{name}.crt"]):
        subprocess.run(["openssl", *cmd], cwd=pki, check=True, capture_output=True, timeout=60)
    (pki / f"{name}.key").chmod(0o600)
    for tmp in (ext, pki / f"{name}.csr"):
        tmp.unlink()
    return pki / f"{name}.crt"


def _policy(host_run: Callable[..., Result], domain: str) -> Result:
    """The MTA-STS policy as a sender fetches it: https://mta-sts.<domain>/ from the client,
    at the host the lab's DNS names for it (its CNAME), the certificate checked against the
    lab CA for that name."""
    target = host_run("client", f"kdig +short @127.0.0.1 CNAME mta-sts.{domain}.")
    host = target.stdout.strip().rstrip(".")
    assert host, f"no CNAME for mta-sts.{domain} in the lab's DNS: {target.stdout}"
    address = host_run("client", f"getent hosts {shlex.quote(host)}").stdout.split()[:1]
    assert address, f"{host} does not resolve on the client"
    return host_run("client", "curl -sS --fail --max-time 20 --cacert /etc/ssl/mailgov/ca.crt "
                              f"--resolve mta-sts.{domain}:443:{address[0]} "
                              f"https://mta-sts.{domain}/.well-known/mta-sts.txt")


def converge(data_file: Path) -> float:
    """The limited converge with ``data_file`` as the inventory's data; its seconds."""
    start = time.monotonic()
    env = {**os.environ, "MAILGOV_DATA": str(data_file), "ANSIBLE_NOCOLOR": "1"}
    out = subprocess.run([str(REPO / ".venv/bin/ansible-playbook"),
                          *(str(REPO / "playbooks" / book) for book in CONVERGE),
                          "--tags", "domains"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=900,
                         check=False)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    return time.monotonic() - start


def apply(data_file: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return _mailgov("apply", str(data_file), *_live("mailgov"), "--lock-wait", "60",
                    "--allow-mass-change", REASON, "--confirm", *extra)


@pytest.fixture
def restore_original() -> Iterator[None]:
    yield
    back = apply(DATA_FILE)
    assert back.returncode == 0, back.stdout[-2000:] + back.stderr[-2000:]
    seconds = converge(DATA_FILE)
    print(f"converge back to the original domains: {seconds:.0f} s")


def _people(data: dict[str, Any], passwords: dict[str, str], domain: str) -> list[str]:
    """Local parts of active personal mailboxes whose password the lab knows."""
    return [m["address"] for m in data["mailboxes"]
            if m.get("state", "active") == "active" and m.get("kind", "personal") == "personal"
            and f"{m['address']}@{domain}".lower() in passwords]


def _login(imaps: Callable[..., Any], user: str, password: str) -> str:
    with imaps("mail1") as imap:
        typ, _ = imap.login(user, password)
        return str(typ)


def _raw(host_run: Callable[..., Result], mailbox: str, token: str,
         deadline: float = 90) -> str:
    """The delivered message with subject ``token``, byte for byte (base64 over ssh)."""
    cmd = (f"home=$(doveadm user -f home {shlex.quote(mailbox)}) && "
           f"f=$(grep -l -F {shlex.quote(token)} \"$home\"/Maildir/new/* "
           "\"$home\"/Maildir/cur/* 2>/dev/null | head -1) && test -n \"$f\" && base64 -w0 \"$f\"")
    end = time.monotonic() + deadline
    while True:
        out = host_run("mail1", cmd)
        if out.rc == 0 and out.stdout.strip():
            return base64.b64decode(out.stdout.strip()).decode("utf-8", "surrogateescape")
        assert time.monotonic() < end, f"{token} not delivered to {mailbox}"
        time.sleep(1)


def _verify_on_client(host_run: Callable[..., Result], raw: str) -> dict[str, Any]:
    have = host_run("client", "dpkg-query -W -f='${Status}' python3-dkim")
    if "install ok installed" not in have.stdout:
        got = host_run("client", "DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
                                 "python3-dkim", timeout=600)
        assert got.rc == 0, got.stdout[-600:] + got.stderr[-600:]
    for path, content in (("/tmp/mig-verify.py", VERIFY), ("/tmp/mig-msg.eml", raw)):
        b64 = base64.b64encode(content.encode("utf-8", "surrogateescape")).decode()
        put = host_run("client", f"echo {b64} | base64 -d > {path}")
        assert put.rc == 0, put.stderr
    out = host_run("client", "python3 /tmp/mig-verify.py /tmp/mig-msg.eml")
    assert out.rc == 0, out.stderr
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def test_whole_domain_migration_with_real_clients(
        tmp_path: Path, host_run: Callable[..., Result], smtp: Callable[..., Any],
        imaps: Callable[..., Any], tls: Any, passwords: dict[str, str],
        restore_original: None) -> None:
    today = date.today()
    keep_until = today + timedelta(days=KEEP_DAYS)
    copy = tmp_path / "mailboxes.yaml"
    shutil.copy(DATA_FILE, copy)
    data = load(copy).data
    old = data["organization"]["domain"]

    # One edit, one reviewed plan, that plan applied.
    edit = _mailgov("domain", "migrate", old, NEW, "--keep-until", keep_until.isoformat(),
                    "--request", "1/QĐ-BNNMT", "--data", str(copy))
    assert edit.returncode == 0, edit.stderr
    plan_file = tmp_path / "plan.json"
    plan = _mailgov("plan", str(copy), *_live("planner"), "--out", str(plan_file),
                    "--allow-mass-change", REASON, "--no-audit")
    assert plan.returncode == 4, plan.stdout[-2000:] + plan.stderr[-2000:]  # changes pending
    assert REASON in plan.stdout  # the override is named in the plan text
    done = _mailgov("apply", str(plan_file), *_live("mailgov"), "--lock-wait", "60",
                    "--confirm")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    issue_mta_sts_certificate(NEW)
    seconds = converge(copy)
    print(f"converge with the new domain: {seconds:.0f} s")

    people = _people(data, passwords, old)
    assert len(people) >= 2, "lab/test_passwords.py gives known passwords to >= 2 people"
    sender, rcpt = people[0], people[1]
    unit = next(u for u in data["units"] if u["id"] == "vpb")
    head = unit["head"]

    # Mail to the old and the new address of a person, a unit mailbox and a list arrives.
    for local, box in ((rcpt, rcpt), ("vpb", "vpb"), ("vpb-all", head)):
        for domain in (old, NEW):
            token = f"mig-{uuid.uuid4().hex[:10]}"
            _send(smtp, f"{local}@{domain}", token)
            assert _delivered(host_run, f"{box}@{NEW}", token), \
                f"{local}@{domain} did not reach {box}@{NEW}"

    # IMAP: the primary (new) address logs in, and the old one during the alias period.
    pw = passwords[f"{sender}@{old}".lower()]
    assert _login(imaps, f"{sender}@{NEW}", pw) == "OK"
    assert _login(imaps, f"{sender}@{old}", pw) == "OK"

    # A message a person submits: the new From, signed with NEW's own key, which the lab's
    # DNS publishes (dkimpy on the client asks it).
    token = f"mig-dkim-{uuid.uuid4().hex[:10]}"
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = f"{sender}@{NEW}", f"{rcpt}@{NEW}", token
    msg.set_content("issue 14: signed with the new domain's key\n")
    with smtp("mail1", 587) as s:
        s.ehlo()
        s.starttls(context=tls)
        s.ehlo()
        s.login(f"{sender}@{NEW}", pw)
        s.send_message(msg)
    raw = _raw(host_run, f"{rcpt}@{NEW}", token)
    head_from = next(line for line in raw.splitlines() if line.lower().startswith("from:"))
    assert parseaddr(head_from.split(":", 1)[1])[1] == f"{sender}@{NEW}", head_from
    verdict = _verify_on_client(host_run, raw)
    assert verdict["ok"] is True and verdict["domain"] == NEW, verdict
    selector = verdict["selector"]
    published = host_run("client", f"kdig +short @127.0.0.1 TXT {selector}._domainkey.{NEW}. "
                                   f"{selector}._domainkey.{old}.")
    keys = [line for line in published.stdout.splitlines() if "p=" in line]
    assert len(keys) == 2 and keys[0] != keys[1], published.stdout  # each domain its own key
    new_key = host_run("mail1", f"grep -v -- ----- /etc/dkimkeys/{NEW}/{selector}.pub "
                                "| tr -d '\\n'")
    assert new_key.stdout and new_key.stdout in keys[0].replace('" "', ""), published.stdout
    # a tampered body fails the same verifier (it can fail)
    head_part, _, body = raw.partition("\n\n")
    assert _verify_on_client(host_run, head_part + "\n\nchanged\n" + body)["ok"] is False

    # MTA-STS for both domains: each name served with its own certificate, the same policy,
    # and each domain's _mta-sts TXT in the lab's DNS
    policies = {d: _policy(host_run, d) for d in (old, NEW)}
    assert all(r.rc == 0 for r in policies.values()), policies
    assert policies[old].stdout == policies[NEW].stdout
    assert "version: STSv1" in policies[NEW].stdout
    sts = host_run("client", f"kdig +short @127.0.0.1 TXT _mta-sts.{NEW}. _smtp._tls.{NEW}.")
    assert "v=STSv1; id=" in sts.stdout and "v=TLSRPTv1; rua=mailto:" in sts.stdout, sts.stdout

    # The alias period is over on keep_until: the plan of that day (the planner's --today)
    # ends it. The old address is refused as closed, the new one still receives.
    ended = apply(copy, "--today", keep_until.isoformat(), "--today-max-ahead",
                  str(KEEP_DAYS + 1))
    assert ended.returncode == 0, ended.stdout[-2000:] + ended.stderr[-2000:]
    code, text = _rcpt(smtp, f"{rcpt}@{old}")
    assert code == 550 and "5.1.1" in text and "cancelled per regulation" in text, text
    code, text = _rcpt(smtp, f"{rcpt}@{NEW}")
    assert code == 250, text
