"""Mail authentication (docs/security.md "Mail authentication"): DKIM signing checked by an
independent verifier, inbound SPF/DKIM/DMARC results, key custody, MTA-STS policy served.

The verifier is dkimpy (Debian python3-dkim) on the CLIENT host, a program that shares
nothing with OpenDKIM; the DNS it asks is the TXT records `mailgov dns` prints (the lab's DNS
serves the same, DNS-01 in test_dns_dmarc.py), so the test also proves that what we tell the
administrators to publish is right.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import standards
from mailhelpers import (
    REPO,
    active_users,
    client_packages,
    fetch_delivered,
    known_passwords,
    swaks,
    token,
)

# Runs on the client: verify the message on stdin with dkimpy, DNS answers from a JSON map.
VERIFY_SCRIPT = r"""
import json, sys, dkim
records = json.load(open(sys.argv[1]))
def dnsfunc(name, timeout=5):
    n = name.decode() if isinstance(name, bytes) else name
    txt = records.get(n.rstrip(".") + ".")
    return txt.encode() if txt else None
msg = open(sys.argv[2], "rb").read()
d = dkim.DKIM(msg)
try:
    ok = d.verify(dnsfunc=dnsfunc)
except dkim.ValidationError:  # e.g. "body hash mismatch": a failed verification
    ok = False
print(json.dumps({"ok": bool(ok), "domain": (d.domain or b"").decode(),
                  "selector": (d.selector or b"").decode()}))
"""


def dkim_fetch_dir(role_vars: Callable[..., dict[str, Any]]) -> Path:
    """Where the mailauth role put the public keys: the inventory says (lab or production)."""
    return Path(role_vars("mailauth", "mail1")["mailauth__dkim_fetch_dir"])


def mailgov_dns_json(key_dir: Path, extra: list[str] | None = None) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "mailgov.cli", "dns",
                          str(REPO / "data/mailboxes.yaml"),
                          "--dkim-public-key-dir", str(key_dir), "--format", "json",
                          *(extra or [])],
                         cwd=REPO, capture_output=True, text=True, check=False, timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def inventory_mx(inventory: Any) -> list[str]:
    """The MX host names as the inventory names them: mx_primary first, then mx_backup."""
    names = []
    for host in inventory.groups.get("mx_primary", []) + inventory.groups.get("mx_backup", []):
        fqdn = str(inventory.hostvars.get(host, {}).get("mailgov_fqdn", host))
        names.append(host if "{{" in fqdn else fqdn)  # the example's "{{ inventory_hostname }}"
    return names


def inventory_mta_sts_mode(inventory: Any) -> str:
    """The site's MTA-STS mode: mailgov_mta_sts_mode, or testing (the documented default)."""
    modes = {str(v.get("mailgov_mta_sts_mode", "testing")) for v in inventory.hostvars.values()}
    assert len(modes) == 1, f"one MTA-STS mode for the site, not {modes}"
    return modes.pop()


@pytest.fixture(scope="module")
def dns_doc(role_vars: Callable[..., dict[str, Any]], inventory: Any) -> dict[str, Any]:
    # What an admin publishes: `mailgov dns` with the inventory's MX hosts and MTA-STS mode.
    mx = [a for i, h in enumerate(inventory_mx(inventory)) for a in ("--mx", f"{h}:{10 * (i + 1)}")]
    return mailgov_dns_json(dkim_fetch_dir(role_vars),
                            [*mx, "--mta-sts-mode", inventory_mta_sts_mode(inventory)])


@pytest.fixture(scope="module")
def domain(data: dict[str, Any]) -> str:
    return data["organization"]["domain"]


@pytest.fixture(scope="module")
def users(host_run: Callable[..., Any], data: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    pw = known_passwords()
    return pw, active_users(host_run, pw, data["organization"]["base_dn"])


@pytest.fixture(scope="module")
def dkim_verifier(client_run: Callable[..., Any]) -> None:
    """python3-dkim (dkimpy) on the client, through the lab's package proxy."""
    client_packages(client_run, "python3-dkim")


def _client_verify(client_run: Callable[..., Any], dns_doc: dict[str, Any], raw: str) -> dict:
    txt = {r["name"]: r["value"] for r in dns_doc["records"] if r["type"] == "TXT"}
    files = {"/tmp/s2-dns.json": json.dumps(txt), "/tmp/s2-msg.eml": raw,
             "/tmp/s2-verify.py": VERIFY_SCRIPT}
    for path, content in files.items():
        b64 = base64.b64encode(content.encode("utf-8", "surrogateescape")).decode()
        put = client_run(f"echo {b64} | base64 -d > {path}")
        assert put.rc == 0, put.stderr
    out = client_run("python3 /tmp/s2-verify.py /tmp/s2-dns.json /tmp/s2-msg.eml")
    assert out.rc == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("via", ["mail1", "mail2"])
@pytest.mark.control("DKIM-01", "Submitted mail is DKIM-signed (d=DOMAIN, the host's active "
                     "selector) and dkimpy on the client verifies it with the TXT from mailgov dns")
def test_submitted_mail_is_signed_and_verifies(via: str, users, client_run, host_run, domain,
                                               dns_doc, dkim_verifier, role_vars) -> None:
    pw, active = users
    sender, rcpt = active[0], active[1]
    subject = token()
    sent = swaks(client_run, f"{via}.{domain}", 587, sender, pw[sender], sender, rcpt, subject)
    assert sent.rc == 0, sent.stdout[-800:]
    raw = fetch_delivered(host_run, rcpt, subject)
    assert raw is not None, f"{subject} not delivered to {rcpt}"
    sig = re.search(r"^DKIM-Signature:(.*(?:\n[ \t].*)*)", raw, re.MULTILINE)
    assert sig, "no DKIM-Signature header"
    compact = re.sub(r"\s+", "", sig.group(1))
    tags = dict(t.split("=", 1) for t in compact.split(";") if "=" in t)
    keys = role_vars("mailauth", via)["mailauth__dkim_keys"]
    active_id = next(k["id"] for k in keys if k["state"] == "active")
    assert tags["d"] == domain and tags["s"] == f"{active_id}-{via}" and tags["a"] == "rsa-sha256"
    verdict = _client_verify(client_run, dns_doc, raw)
    assert verdict == {"ok": True, "domain": domain, "selector": f"{active_id}-{via}"}
    # Negative control: the same verifier refuses the message once its body is altered.
    head, _, body = raw.partition("\n\n")
    tampered = _client_verify(client_run, dns_doc, head + "\n\n" + body + "tampered\n")
    assert tampered["ok"] is False


def _kept(key: dict[str, Any]) -> bool:
    """As roles/mailauth/tasks/assert.yml: not absent and not past its removal date."""
    if key["state"] == "absent":
        return False
    return "remove_after" not in key or str(key["remove_after"]) > date.today().isoformat()


def _domains(rv: dict[str, Any]) -> list[str]:
    """The domains a host signs for, each with its own key (primary first)."""
    return [rv["mailauth__domain"], *rv.get("mailauth__alias_domains", [])]


@pytest.mark.control("DKIM-03", "DKIM private keys are RSA 2048, opendkim-only (0600) on each "
                     "mail host; the controller holds only public keys")
def test_private_keys_stay_on_the_mail_hosts(mail_hosts, role_vars) -> None:
    for name, host in mail_hosts.items():
        rv = role_vars("mailauth", name)
        kept = [k for k in rv["mailauth__dkim_keys"] if _kept(k)]
        assert kept
        for k in kept:
            for d in _domains(rv):  # a key per domain: <key dir>/<domain>/<selector>.private
                f = host.file(f"{rv['mailauth__dkim_key_dir']}/{d}/{k['id']}-{name}.private")
                assert f.exists and f.user == "opendkim" and f.mode == 0o600, f.path
                bits = host.run(f"openssl pkey -in {f.path} -noout -text | head -1")
                assert re.search(r"\(2048 bit", bits.stdout), bits.stdout
    fetched = [p for p in dkim_fetch_dir(role_vars).rglob("*") if p.is_file()]
    assert fetched and all(p.suffix == ".pub" for p in fetched)
    assert not any("PRIVATE" in p.read_text() for p in fetched)


@pytest.mark.control("DKIM-02", "Every DKIM key the role keeps (active, published, retired "
                     "before its date) is published by mailgov dns, RSA >= 2048 and not in "
                     "testing mode; each host signs with its own")
def test_every_kept_key_is_published(mail_hosts, role_vars, dns_doc, domain) -> None:
    txt = {r["name"]: r["value"] for r in dns_doc["records"] if r["type"] == "TXT"}
    names = set(txt)
    for name in mail_hosts:
        # Which keys exist (ids, states, dates) is the deployment's key rotation record.
        for k in role_vars("mailauth", name)["mailauth__dkim_keys"]:
            rec = f"{k['id']}-{name}._domainkey.{domain}."
            assert (rec in names) == _kept(k), rec
    # What is published must meet RFC 8301 / RFC 6376 (standards.py), whatever the role says.
    published = {n: v for n, v in txt.items() if "._domainkey." in n}
    assert published, "no DKIM key record"
    problems = {n: standards.dkim_record_violations(v) for n, v in published.items()}
    assert not any(problems.values()), problems
    for name, host in mail_hosts.items():
        rv = role_vars("mailauth", name)
        table = host.file("/etc/opendkim/signing.table").content_string
        keys = host.file("/etc/opendkim/key.table").content_string
        active = next(k["id"] for k in rv["mailauth__dkim_keys"] if k["state"] == "active")
        for d in _domains(rv):
            # each domain signs with its own key: d= the domain, the file in its directory
            assert re.search(rf"^\*@{re.escape(d)} {active}-{name}\.{re.escape(d)}$", table,
                             re.MULTILINE), table
            assert re.search(rf"^{active}-{name}\.{re.escape(d)} {re.escape(d)}:{active}-{name}:"
                             rf"{re.escape(rv['mailauth__dkim_key_dir'])}/{re.escape(d)}/"
                             rf"{active}-{name}\.private$", keys, re.MULTILINE), keys


@pytest.mark.control("DKIM-04", "A rebuilt host signs with the DKIM key kept in the vault "
                     "(mailauth__dkim_private_keys), not with a new key under the old selector")
def test_rebuilt_host_signs_with_vault_key(host_run, role_vars, inventory, tmp_path) -> None:
    name = inventory.groups["mx_backup"][0] if inventory.groups.get("mx_backup") else "mail1"
    active = next(k["id"] for k in role_vars("mailauth", name)["mailauth__dkim_keys"]
                  if k["state"] == "active")
    domain = role_vars("mailauth", name)["mailauth__domain"]
    key = f"/etc/dkimkeys/{domain}/{active}-{name.split('.')[0]}.private"
    before = host_run(name, f"openssl pkey -in {key} -pubout | sha256sum")
    assert before.rc == 0, before.stderr
    pem = host_run(name, f"cat {key}")
    assert pem.rc == 0 and "PRIVATE KEY" in pem.stdout
    vault = tmp_path / "vault-dkim.json"  # stands in for the vault: 0600, gone with tmp_path
    vault.touch(mode=0o600)
    vault.write_text(json.dumps({"mailauth__dkim_private_keys": {  # "<domain>/<selector>"
        f"{domain}/{active}-{name.split('.')[0]}": pem.stdout}}))
    try:
        # The host loses its keys, as a rebuilt one has none; the next converge brings them.
        gone = host_run(name, f"rm -f {key} {key.removesuffix('.private')}.pub")
        assert gone.rc == 0, gone.stderr
        run = subprocess.run(
            [str(REPO / ".venv/bin/ansible-playbook"), str(REPO / "playbooks/security.yml"),
             "--tags", "dkim", "--limit", name, "-e", f"@{vault}"],
            cwd=REPO, capture_output=True, text=True, timeout=600, check=False,
            env={**os.environ, "ANSIBLE_NOCOLOR": "1"})
        assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
        assert "PRIVATE KEY" not in run.stdout + run.stderr  # no_log kept the key out
        after = host_run(name, f"openssl pkey -in {key} -pubout | sha256sum")
        assert after.stdout == before.stdout, "the rebuilt host signs with another key"
        owner = host_run(name, f"stat -c '%U %a' {key}")
        assert owner.stdout.split() == ["opendkim", "600"], owner.stdout
    finally:
        # Whatever happened, the host keeps its original key (DNS publishes it).
        fix = host_run(name, f"cat > {key} <<'EOF'\n{pem.stdout.strip()}\nEOF\n"
                       f"chown opendkim:opendkim {key}; chmod 600 {key}; "
                       f"openssl pkey -in {key} -pubout -out {key.removesuffix('.private')}.pub; "
                       "systemctl restart opendkim")
        assert fix.rc == 0, fix.stderr


@pytest.mark.control("MAIL-01", "Mail arriving at the primary MX over SMTP gets SPF, DKIM and "
                     "DMARC results from the receiving host, checked through the lab's DNS: a "
                     "ministry message relayed by the backup MX has spf=pass, dkim=pass and "
                     "dmarc=pass for the domain")
def test_inbound_mail_gets_authentication_results(users, client_run, host_run, domain,
                                                  inventory) -> None:
    pw, active = users
    sender, rcpt = active[0], active[2]
    subject = token()
    # Submitted on the backup MX (signed there), relayed over SMTP to the primary, which checks
    # it as any inbound message: SPF of the backup MX's address against `v=spf1 mx -all`, its
    # DKIM key and the DMARC record, all from DNS (issue 11: no `none` accepted).
    backup = inventory_mx(inventory)[-1]
    primary = inventory_mx(inventory)[0]
    assert backup != primary, "MAIL-01 needs a backup MX that relays to the primary"
    sent = swaks(client_run, backup, 587, sender, pw[sender], sender, rcpt, subject)
    assert sent.rc == 0, sent.stdout[-800:]
    raw = fetch_delivered(host_run, rcpt, subject)
    assert raw is not None
    headers = raw.partition("\n\n")[0]
    ar = re.findall(r"^Authentication-Results: ([^;\s]+);(.*(?:\n[ \t].*)*)", headers,
                    re.MULTILINE)
    assert ar, headers
    # Only the receiving host's results (the backup MX adds none for its own users).
    assert {a[0] for a in ar} == {primary}, ar
    results = re.sub(r"\s+", " ", " ".join(a[1] for a in ar))
    assert re.search(rf"\bspf=pass smtp\.mailfrom={re.escape(domain)}\b", results), results
    # "dkim=pass (2048-bit key; unprotected) header.d=..." (unprotected: no DNSSEC anchor).
    assert re.search(rf"\bdkim=pass (?:\([^)]*\) )?header\.d={re.escape(domain)}\b", results), (
        results)
    assert re.search(rf"\bdmarc=pass (?:\([^)]*\) )?header\.from={re.escape(domain)}\b",
                     results), results


@pytest.mark.control("MAIL-02", "DMARC p=reject of a sender domain is enforced (OpenDMARC "
                     "RejectFailures) and SPF is checked by OpenDMARC itself")
def test_dmarc_reject_is_honoured(mail_hosts) -> None:
    for name, host in mail_hosts.items():
        conf = host.run("opendmarc -n -c /etc/opendmarc.conf && cat /etc/opendmarc.conf")
        assert conf.rc == 0, conf.stderr
        # RFC 7489 p=reject is enforced: standards.py, not the role's switch.
        assert not standards.opendmarc_violations(conf.stdout), (
            name, standards.opendmarc_violations(conf.stdout))
        milters = host.run("postconf -h smtpd_milters").stdout
        assert "8891" in milters and "8893" in milters  # OpenDKIM first, then OpenDMARC
        assert milters.index("8891") < milters.index("8893")


@pytest.mark.control("MAIL-03", "The MTA-STS policy is served over HTTPS at mta-sts.DOMAIN with a "
                     "valid certificate and equals the policy (and id) mailgov dns publishes")
def test_mta_sts_policy_served(client_run, host_address, dns_doc, domain) -> None:
    url = dns_doc["mta_sts_policy"]["url"]
    addr = host_address("mail1")
    # sha256 on the client: the policy's CRLF line ends must survive, and text transport
    # (universal newlines) would hide them. --fail: HTTP errors fail; the certificate is
    # checked against the client's trust store (the lab CA).
    out = client_run("set -o pipefail; " + shlex.join(
        ["curl", "-sS", "--fail", "--max-time", "20", "--resolve",
         f"mta-sts.{domain}:443:{addr}", url]) + " | sha256sum")
    assert out.rc == 0, out.stderr
    want = hashlib.sha256(dns_doc["mta_sts_policy"]["text"].encode()).hexdigest()
    assert out.stdout.split()[0] == want
    txt = [r["value"] for r in dns_doc["records"] if r["name"] == f"_mta-sts.{domain}."]
    assert txt == [f"v=STSv1; id={dns_doc['mta_sts_policy']['id']}"]
    bad = client_run(["curl", "-sS", "--max-time", "20", "--resolve", f"wrong.{domain}:443:{addr}",
                      f"https://wrong.{domain}/.well-known/mta-sts.txt"])
    # The certificate names mta-sts.DOMAIN only: curl's exit 60 (peer certificate cannot be
    # authenticated) with the name mismatch, not any failure (a closed port would be 7).
    assert bad.rc == 60, (bad.rc, bad.stderr)
    assert re.search(r"(no alternative certificate subject name matches|does not match)",
                     bad.stderr), bad.stderr




@pytest.mark.control("MAIL-05", "The MTA-STS policy names the inventory's MX hosts and the "
                     "site's mode (testing unless the inventory says enforce)")
def test_mta_sts_policy_follows_inventory(client_run, host_address, inventory, domain) -> None:
    primary = inventory.groups["mx_primary"][0]
    out = client_run(["curl", "-sS", "--fail", "--max-time", "20", "--resolve",
                      f"mta-sts.{domain}:443:{host_address(primary)}",
                      f"https://mta-sts.{domain}/.well-known/mta-sts.txt"])
    assert out.rc == 0, out.stderr
    fields: dict[str, list[str]] = {}
    for line in out.stdout.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), []).append(value.strip())
    # RFC 8461 3.2: version STSv1, one mode, one mx line per MX host the senders may use.
    assert fields.get("version") == ["STSv1"], out.stdout
    assert fields.get("mode") == [inventory_mta_sts_mode(inventory)], out.stdout
    assert fields.get("mx") == inventory_mx(inventory), out.stdout


@pytest.mark.control("MAIL-04", "The web server names no version (Server header, error pages)")
def test_web_server_hides_version(client_run, host_address) -> None:
    # By address, not by a site's name: whatever site nginx picks as the default answers
    # (-k: no certificate names an address; only the headers and the body are read).
    out = client_run(["curl", "-sS", "-k", "-i", "--max-time", "20",
                      f"https://{host_address('mail1')}/no-such-page"])
    assert out.rc == 0, out.stderr
    head, _, body = out.stdout.partition("\r\n\r\n")
    server = [ln for ln in head.splitlines() if ln.lower().startswith("server:")]
    assert server == ["Server: nginx"], head
    assert not re.search(r"nginx/\d", body), body
